#!/bin/sh
# PostgreSQL init script (docker-entrypoint-initdb.d): one database and one owner role per service,
# each with its own password, so no service can read another's data.
# Runs once, on an empty data directory. Needs <SERVICE>_DB_PASSWORD for each service.
set -eu

# Every password is checked before anything is created: no half-initialised server.
for name in gateway customer product sync analytics; do
    eval "password=\${$(echo "$name" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD:-}"
    [ -n "$password" ] || { echo "init-databases: ${name}'s password is empty" >&2; exit 1; }
done

create() {
    name=$1
    password=$2
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="$name" -v password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
}

create gateway "${GATEWAY_DB_PASSWORD:-}"
create customer "${CUSTOMER_DB_PASSWORD:-}"
create product "${PRODUCT_DB_PASSWORD:-}"
create sync "${SYNC_DB_PASSWORD:-}"
create analytics "${ANALYTICS_DB_PASSWORD:-}"
