# The MLflow tracking server and model registry, backed by PostgreSQL, serving the artifact store itself.
# Concepts: containers (C46), experiment tracking and registry at scale (C11, C12). Clients never touch the
# artifact storage directly: with --serve-artifacts they upload and download through this server
# (mlflow-artifacts:/ URIs), so only this container needs the storage volume or cloud credentials.
# The database URL comes from MLFLOW_BACKEND_STORE_URI and the password from PGPASSWORD (compose), never
# from this file. Security (C44): MLflow's basic-auth app runs in front (`--app-name basic-auth`, config
# docker/mlflow/basic_auth.ini); its admin password and session key come from secrets at run time. Build from the repository root; the tag is the plain git sha, never `latest`.

# uv itself, pinned like every other base (the version this repository is developed with).
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---- builder: MLflow and the PostgreSQL driver at exactly the locked versions ----------------------------
FROM python:3.11.7-slim-bookworm AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
WORKDIR /src
COPY pyproject.toml uv.lock ./
# The server needs MLflow and psycopg, not our code nor Prefect, Evidently or Great Expectations. So the
# lock is exported as a constraints file (every package pinned to its locked version) and only those two
# are installed under it: the same versions as the clients' environment, about 40 % less image.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv export --frozen --no-dev --no-emit-project --no-hashes --format requirements-txt -o /tmp/constraints.txt \
    && uv venv /opt/mlflow \
    && uv pip install --python /opt/mlflow/bin/python --constraint /tmp/constraints.txt "mlflow[auth]" "psycopg[binary]"

# ---- runtime ---------------------------------------------------------------------------------------------
FROM python:3.11.7-slim-bookworm AS runtime
ARG GIT_REVISION=unknown
LABEL org.opencontainers.image.title="mlops-lab-mlflow" \
      org.opencontainers.image.description="MLflow tracking server + registry for mlops-lab (PostgreSQL, served artifacts)" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 mlops \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --create-home --home-dir /home/mlops mlops \
    && mkdir -p /mlflow/artifacts /mlflow/auth \
    && chown -R 10001:10001 /mlflow
COPY --from=builder /opt/mlflow /opt/mlflow
COPY docker/healthcheck.py /usr/local/bin/healthcheck.py
COPY docker/mlflow/basic_auth.ini /etc/mlflow/basic_auth.ini
WORKDIR /mlflow
ENV PATH="/opt/mlflow/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    MLFLOW_AUTH_CONFIG_PATH=/etc/mlflow/basic_auth.ini
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "/usr/local/bin/healthcheck.py", "http://127.0.0.1:5000/health"]
ENTRYPOINT ["mlflow", "server"]
CMD ["--host", "0.0.0.0", "--port", "5000", "--app-name", "basic-auth", \
     "--serve-artifacts", "--artifacts-destination", "/mlflow/artifacts"]
