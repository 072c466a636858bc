# The prediction API as an AWS Lambda function (serving/lambda_handler.py): the service's own app behind Mangum,
# for an API Gateway HTTP API (payload format 2.0). Concepts: serverless deployment (C55), containers (C46).
# Build from the repository root with the tag `mlops-lab images tags` prints, never `latest`:
#   docker build -f docker/lambda.Dockerfile --build-arg GIT_REVISION=<sha> --build-arg MODEL_VERSION=<n> \
#                -t mlops-lab-lambda:<sha12>-m<n> .
# The model is not baked in: the first invocation of each execution environment (the cold start) loads
# models:/<name>@champion from the registry named by MLOPS_TRACKING_URI. The function's configuration must set
# MLOPS_TRACKING_URI (the MLflow server) and MLOPS_PREDICTION_LOG_URL (PostgreSQL): SQLite on the
# environment's disk is refused at the cold start (docs/serverless.md).
#
# Why Python 3.12 and not the 3.11 of the other images: the Lambda base images for Python 3.11 run on Amazon
# Linux 2 (glibc 2.26), which cannot load the manylinux_2_27/2_28 wheels uv.lock holds for numpy, scipy,
# scikit-learn and onnxruntime; the 3.12 images run on Amazon Linux 2023 (glibc 2.34), and the lock (resolved
# for Python 3.11 to 3.13) has a wheel of every runtime package for it (tests/unit/ops/test_lambda_image.py).

# uv itself, pinned like every other base (the version this repository is developed with).
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---- builder: the locked dependencies, then our packages, installed into one folder -----------------------
FROM public.ecr.aws/lambda/python:3.12.2026.10.03.13 AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_INSTALLER_METADATA=1
WORKDIR /src
# Dependencies first, from the lock alone (exported with its hashes): rebuilt only when uv.lock changes.
# Lambda imports from the task root, so everything is installed into one folder with --target, no venv.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv export --frozen --no-dev --no-emit-project --output-file requirements.txt \
    && uv pip install --requirement requirements.txt --target /opt/task
# Then only the packages the handler imports: core, pipelines, serving (no CLI, flows, monitoring, lab).
COPY README.md LICENSE ./
COPY core ./core
COPY pipelines ./pipelines
COPY serving ./serving
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --no-deps --target /opt/task .

# ---- runtime: the Lambda base (runtime interface client included) + the task root; no uv --------------------
FROM public.ecr.aws/lambda/python:3.12.2026.10.03.13 AS runtime
ARG GIT_REVISION=unknown
ARG MODEL_VERSION=0
LABEL org.opencontainers.image.title="mlops-lab-lambda" \
      org.opencontainers.image.description="mlops-lab prediction API as an AWS Lambda function (Mangum)" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      io.mlops-lab.model-version="${MODEL_VERSION}"
COPY --from=builder /opt/task /var/task
COPY params.yaml /var/task/params.yaml
# /tmp is the only writable path on Lambda: the state folder (locks, downloaded model files) goes there.
# One request per execution environment: micro-batching would never find a neighbour, so it is off.
ENV MLOPS_PROJECT_DIR=/var/task \
    MLOPS_STATE_DIR=/tmp/mlops-lab \
    MLOPS_MICRO_BATCH_ROWS=0 \
    PYTHONDONTWRITEBYTECODE=1
# Lambda itself runs functions as an unprivileged sandbox user; this keeps a local run (the base image's
# runtime interface emulator) off root too. A numeric uid: no account is needed for it.
USER 10001:10001
CMD ["serving.lambda_handler.handler"]
