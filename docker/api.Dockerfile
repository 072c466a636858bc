# The prediction API (serving/): `mlops-lab serve`, one uvicorn process per container; scale with replicas.
# Concepts: containers (C46), immutable infrastructure (C29). Build from the repository root with the tag
# that `mlops-lab images tags` prints (git sha + champion version), never `latest`:
#   docker build -f docker/api.Dockerfile --build-arg GIT_REVISION=<sha> --build-arg MODEL_VERSION=<n> \
#                -t mlops-lab-api:<sha12>-m<n> .
# The model is not baked in: the service loads models:/<name>@champion from the MLflow registry at start
# and follows alias moves (hot reload, C28). The tag records which champion this release was cut for.

# uv itself, pinned like every other base (the version this repository is developed with).
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---- builder: the locked environment, built once, copied whole into the runtime stage -------------------
FROM python:3.11.7-slim-bookworm AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first, from the lock alone: this layer is rebuilt only when uv.lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
# Then our code, installed as a regular (non-editable) package: the runtime needs no source tree. Only the
# packages the API imports (`mlops-lab serve`): the layers below serving/ and the CLI; no flows, monitoring,
# operations tooling, benchmarks or teaching material (tests/unit/ops/test_api_image.py holds this list).
COPY README.md LICENSE ./
COPY core ./core
COPY pipelines ./pipelines
COPY serving ./serving
COPY cli ./cli
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# ---- runtime: interpreter + venv + params.yaml; no uv, no compiler, no source tree -------------------------
FROM python:3.11.7-slim-bookworm AS runtime
ARG GIT_REVISION=unknown
ARG MODEL_VERSION=0
LABEL org.opencontainers.image.title="mlops-lab-api" \
      org.opencontainers.image.description="mlops-lab prediction API (FastAPI, canary router, prediction log)" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      io.mlops-lab.model-version="${MODEL_VERSION}"
# A fixed numeric uid: Kubernetes' runAsNonRoot can only verify a numeric USER.
RUN groupadd --system --gid 10001 mlops \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --create-home --home-dir /home/mlops mlops \
    && mkdir -p /var/lib/mlops-lab \
    && chown 10001:10001 /var/lib/mlops-lab
COPY --from=builder /app/.venv /app/.venv
COPY params.yaml /app/params.yaml
COPY docker/healthcheck.py /usr/local/bin/healthcheck.py
WORKDIR /app
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLOPS_PROJECT_DIR=/app \
    MLOPS_STATE_DIR=/var/lib/mlops-lab
USER 10001:10001
EXPOSE 8000
# Liveness, not readiness: a fresh stack has no champion yet (/readyz is 503 until one exists), and that is
# no reason to restart the process. Orchestrators that route traffic use /readyz (see k8s/).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/bin/healthcheck.py", "http://127.0.0.1:8000/healthz"]
CMD ["mlops-lab", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "1"]
