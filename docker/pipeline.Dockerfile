# The pipeline image: our Prefect flows (training, monitoring, retraining, rollout) and the Prefect server.
# Concepts: containers (C46), orchestration at scale (C03). The default command serves the `monitoring`
# flow as a Prefect deployment on its cron (`mlops-lab monitor --serve`): a long-running runner that polls
# the Prefect server for scheduled runs and executes them; a fired check starts the guarded retrain. The
# same image runs one-shot commands (`mlops-lab train`) and, in compose, the Prefect server itself, so
# server and runner always speak the same locked Prefect version.
# Build from the repository root; the tag is the plain git sha (`mlops-lab images tags`), never `latest`.

# uv itself, pinned like every other base (the version this repository is developed with).
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---- builder: the locked environment ---------------------------------------------------------------------
FROM python:3.11.7-slim-bookworm AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY README.md LICENSE ./
COPY core ./core
COPY pipelines ./pipelines
COPY serving ./serving
COPY monitoring ./monitoring
COPY flows ./flows
COPY ops ./ops
COPY bench ./bench
COPY lab ./lab
COPY cli ./cli
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# ---- runtime ---------------------------------------------------------------------------------------------
FROM python:3.11.7-slim-bookworm AS runtime
ARG GIT_REVISION=unknown
LABEL org.opencontainers.image.title="mlops-lab-pipeline" \
      org.opencontainers.image.description="mlops-lab Prefect flows: train, monitor, retrain, roll out" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      org.opencontainers.image.licenses="MIT"
# /app/data receives the raw dataset (`mlops-lab ingest`, params.yaml dataset.path); state holds Prefect's
# runner storage and the drift reports. Both belong to the non-root user and are volumes in compose.
RUN groupadd --system --gid 10001 mlops \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --create-home --home-dir /home/mlops mlops \
    && mkdir -p /var/lib/mlops-lab /app/data/raw \
    && chown -R 10001:10001 /var/lib/mlops-lab /app/data
COPY --from=builder /app/.venv /app/.venv
COPY params.yaml /app/params.yaml
COPY docker/healthcheck.py /usr/local/bin/healthcheck.py
WORKDIR /app
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLOPS_PROJECT_DIR=/app \
    MLOPS_STATE_DIR=/var/lib/mlops-lab \
    PREFECT_HOME=/var/lib/mlops-lab/prefect \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PREFECT_RUNNER_SERVER_ENABLE=true \
    PREFECT_RUNNER_SERVER_HOST=127.0.0.1 \
    PREFECT_RUNNER_SERVER_PORT=8080
USER 10001:10001
# The runner's own web server answers /health with 503 once it has missed polls of the Prefect server
# (PREFECT_RUNNER_SERVER_MISSED_POLLS_TOLERANCE): a stuck runner is restarted, a busy one is not.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/healthcheck.py", "http://127.0.0.1:8080/health"]
CMD ["mlops-lab", "monitor", "--serve"]
