-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d), as POSTGRES_USER.
-- One server, one database per service: `mlops` (POSTGRES_DB: prediction log, routing state, findings)
-- is created by the image itself; MLflow and Prefect each get their own, owned by the same role.
CREATE DATABASE mlflow;
CREATE DATABASE prefect;
