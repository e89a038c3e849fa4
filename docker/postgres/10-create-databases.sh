#!/bin/bash
# Creates the roles and databases of the cxsync topology on first start of the postgres container.
#
# The official postgres image runs every *.sh in /docker-entrypoint-initdb.d once, when the data directory is
# still empty, as the postgres user, with trust authentication on the Unix socket (docker-library/docs,
# postgres/content.md, "Initialization scripts"). It does not run again on later starts: to change passwords
# afterwards use ALTER ROLE, not this script.
#
#   temporal             role; owns temporal + temporal_visibility (schemas installed by temporal-schema-setup)
#   temporal_visibility  with the btree_gin extension that Temporal's PostgreSQL visibility schema creates
#                        (schema/postgresql/v12/visibility/schema.sql), made here by the superuser
#   cxsync               role; owns database cxsync (schemas sync.* and crm.*, created by cxsync's migrations)
#
# Each database is closed to PUBLIC: Temporal cannot read cxsync's data and cxsync cannot read Temporal's.
set -Eeo pipefail

: "${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD must be set (see docker/env.example)}"
: "${CXSYNC_DB_PASSWORD:?CXSYNC_DB_PASSWORD must be set (see docker/env.example)}"

# Passwords go through psql variables (:'name' quotes them as SQL literals), never into the SQL text itself.
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
  -v temporal_pw="$TEMPORAL_DB_PASSWORD" -v cxsync_pw="$CXSYNC_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE temporal LOGIN PASSWORD %L', :'temporal_pw')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'temporal') \gexec
SELECT format('CREATE ROLE cxsync LOGIN PASSWORD %L', :'cxsync_pw')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cxsync') \gexec

SELECT 'CREATE DATABASE temporal OWNER temporal'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'temporal') \gexec
SELECT 'CREATE DATABASE temporal_visibility OWNER temporal'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'temporal_visibility') \gexec
SELECT 'CREATE DATABASE cxsync OWNER cxsync'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'cxsync') \gexec

REVOKE ALL ON DATABASE temporal, temporal_visibility, cxsync FROM PUBLIC;

\connect temporal_visibility
CREATE EXTENSION IF NOT EXISTS btree_gin;
SQL

echo "cxsync: created roles temporal, cxsync and databases temporal, temporal_visibility, cxsync"
