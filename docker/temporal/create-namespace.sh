#!/bin/sh
# Creates the Temporal namespace cxsync uses (once), after the server answers its health check, then exits 0.
#
# temporalio/server, unlike the deprecated temporalio/auto-setup, creates no namespace; Temporal's official
# compose example does it with a one-shot admin-tools container (temporalio/samples-server,
# compose/scripts/create-namespace.sh). Same steps here, using the `temporal` CLI shipped in temporalio/admin-tools.
set -eu

NAMESPACE="${NAMESPACE:-default}"
RETENTION="${NAMESPACE_RETENTION:-3d}"
ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
MAX_ATTEMPTS="${MAX_ATTEMPTS:-60}"

attempt=1
until temporal operator cluster health --address "$ADDRESS" >/dev/null 2>&1; do
  if [ "$attempt" -ge "$MAX_ATTEMPTS" ]; then echo "Temporal at $ADDRESS did not become healthy" >&2; exit 1; fi
  echo "waiting for Temporal at $ADDRESS ($attempt/$MAX_ATTEMPTS)"
  attempt=$((attempt + 1))
  sleep 5
done

attempt=1
while :; do
  if temporal operator namespace describe --namespace "$NAMESPACE" --address "$ADDRESS" >/dev/null 2>&1; then
    echo "namespace $NAMESPACE exists"
    exit 0
  fi
  if temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" --address "$ADDRESS"; then
    echo "namespace $NAMESPACE created (retention $RETENTION)"
    exit 0
  fi
  if [ "$attempt" -ge "$MAX_ATTEMPTS" ]; then echo "could not create namespace $NAMESPACE" >&2; exit 1; fi
  attempt=$((attempt + 1))
  sleep 5
done
