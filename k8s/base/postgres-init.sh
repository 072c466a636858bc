#!/bin/sh
# Runs once, as the superuser, when the PostgreSQL data volume is empty (the image runs every file in
# /docker-entrypoint-initdb.d). One login role and one database per service, so the prediction API
# cannot read MLflow's tables nor Prefect's. Passwords come from the postgres-credentials Secret.
set -e

create() { # $1 = role and database name, $2 = its password
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set=name="$1" --set=pw="$2" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'pw';
CREATE DATABASE :"name" OWNER :"name";
SQL
}

create mlflow "$MLFLOW_DB_PASSWORD"
create prefect "$PREFECT_DB_PASSWORD"
create predictions "$PREDICTIONS_DB_PASSWORD"
