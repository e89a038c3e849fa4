#!/bin/sh
# Installs or upgrades Temporal's PostgreSQL schemas (persistence + visibility), then exits 0.
#
# This is the procedure of Temporal's official compose example (temporalio/samples-server,
# compose/scripts/setup-postgres.sh) and of tools/sql/README.md in temporalio/temporal: `setup-schema -v 0.0`
# creates the schema_version tables, `update-schema -d <versioned dir>` applies every versioned step above the
# recorded version. Both are idempotent (setup-schema skips when the recorded version is higher;
# tools/common/schema/setuptask.go), so this job runs on every `docker compose up` and, after the image tag is
# raised, performs the schema upgrade the new server needs before the server starts.
#
# The databases themselves are created by docker/postgres/10-create-databases.sh, so `temporal-sql-tool create`
# (which needs CREATEDB) is not run here. Runs in temporalio/admin-tools (Alpine, busybox sh and nc).
set -eu

: "${POSTGRES_SEEDS:?POSTGRES_SEEDS (PostgreSQL host) is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}" # read by temporal-sql-tool itself (flag --password, env SQL_PASSWORD)
DB_PORT="${DB_PORT:-5432}"
DBNAME="${DBNAME:-temporal}"
VISIBILITY_DBNAME="${VISIBILITY_DBNAME:-temporal_visibility}"
# Schema files shipped in temporalio/admin-tools (COPY ./build/temporal/schema /etc/temporal/schema).
SCHEMA_DIR="${SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}"

echo "waiting for PostgreSQL at ${POSTGRES_SEEDS}:${DB_PORT}"
attempt=0
until nc -z -w 5 "$POSTGRES_SEEDS" "$DB_PORT"; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 60 ]; then echo "PostgreSQL not reachable" >&2; exit 1; fi
  sleep 2
done

sql_tool() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

echo "setting up schema of database ${DBNAME}"
sql_tool --db "$DBNAME" setup-schema -v 0.0
sql_tool --db "$DBNAME" update-schema -d "$SCHEMA_DIR/temporal/versioned"

echo "setting up schema of database ${VISIBILITY_DBNAME}"
sql_tool --db "$VISIBILITY_DBNAME" setup-schema -v 0.0
sql_tool --db "$VISIBILITY_DBNAME" update-schema -d "$SCHEMA_DIR/visibility/versioned"

echo "Temporal schemas are up to date"
