#!/bin/sh
# Run once by the postgres image on an empty data directory (compose.yaml mounts this
# folder as /docker-entrypoint-initdb.d). The owner (POSTGRES_USER) migrates; the service
# logs in as corespond_app, a member of corespond_service, to which the migrations grant
# what the service needs (on the audit log: SELECT and INSERT only).
set -eu
psql --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     --set ON_ERROR_STOP=1 --set app_password="$SERVICE_DB_PASSWORD" <<'SQL'
CREATE ROLE corespond_service NOLOGIN;
CREATE ROLE corespond_app LOGIN PASSWORD :'app_password' IN ROLE corespond_service;
CREATE EXTENSION IF NOT EXISTS btree_gist;
SQL
