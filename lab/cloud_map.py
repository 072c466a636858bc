"""Managed cloud ML platform features, mapped to the open-source component that does the job here.

Concept: cloud equivalents (C53). SageMaker, Vertex AI and Azure ML sell the same handful of
capabilities under different names: pipelines, tracking, a registry, endpoints that split traffic,
request capture, monitoring, batch scoring, a feature store; and around them the cloud's general
services: serverless functions, secrets, an audit trail, ETL and object storage. Knowing the capability, not the brand,
is what transfers between jobs. Each row names the capability in plain words, the widely known
product name on each platform (``None`` where we do not claim one), and the file here that does the
same job, or says plainly that we did not build it. ``check_cloud_map`` checks every local path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.refs import reference_problems


@dataclass(frozen=True)
class Equivalent:
    """One capability: the cloud names for it and our component (empty ``local`` = not built)."""

    capability: str
    sagemaker: str | None
    vertex: str | None
    azure: str | None
    ours: str
    local: tuple[str, ...] = ()

    @property
    def built(self) -> bool:
        return bool(self.local)


CLOUD_MAP: tuple[Equivalent, ...] = (
    Equivalent(
        "ML pipelines (steps with retries and parameters)",
        "SageMaker Pipelines",
        "Vertex AI Pipelines",
        "Azure ML pipelines",
        "Prefect flows and tasks; dvc.yaml for offline reruns",
        ("pipelines/training_flow.py", "dvc.yaml"),
    ),
    Equivalent(
        "Experiment tracking",
        "SageMaker Experiments (or managed MLflow)",
        "Vertex AI Experiments",
        "Azure ML jobs with MLflow tracking",
        "MLflow runs: params, metrics, artefacts, lineage tags",
        ("pipelines/tracking.py::log_training_run",),
    ),
    Equivalent(
        "Managed training jobs (compute started for one run)",
        "SageMaker training jobs",
        "Vertex AI custom training",
        "Azure ML command jobs",
        "the training flow's train task, on this machine or a Prefect worker; nothing provisions compute per run",
        ("pipelines/training_steps.py::train_candidate",),
    ),
    Equivalent(
        "Hyperparameter search",
        "SageMaker automatic model tuning",
        "Vertex AI hyperparameter tuning",
        "Azure ML sweep jobs",
        "an Optuna study (TPE, median pruning on CV folds) logged as nested MLflow runs, on this machine",
        ("pipelines/search.py::run_study", "pipelines/search_tracking.py::search_candidate"),
    ),
    Equivalent(
        "Model registry with versions",
        "SageMaker Model Registry",
        "Vertex AI Model Registry",
        "Azure ML model registry",
        "MLflow registry with champion/challenger aliases and an audit log",
        ("pipelines/registry.py", "pipelines/audit.py"),
    ),
    Equivalent(
        "Online endpoint with weighted traffic split",
        "SageMaker real-time endpoint with production variants",
        "Vertex AI endpoint traffic split",
        "Azure ML managed online endpoint traffic allocation",
        "FastAPI service with the canary / A/B / blue-green router",
        ("serving/app.py::create_app", "serving/router.py::route"),
    ),
    Equivalent(
        "Serverless inference (a function per request)",
        "AWS Lambda (or SageMaker Serverless Inference)",
        "Cloud Run functions",
        "Azure Functions",
        "the same app as a Lambda handler (Mangum, lifespan once per environment) and its image",
        ("serving/lambda_handler.py::handler", "docker/lambda.Dockerfile"),
    ),
    Equivalent(
        "Shadow (mirrored) traffic",
        "SageMaker shadow tests",
        None,
        "Azure ML mirrored traffic",
        "shadow strategy: challenger scored after the response, never returned",
        ("serving/router.py::route", "serving/predict.py::Predictor.shadow"),
    ),
    Equivalent(
        "Guarded rollout with automatic rollback",
        "SageMaker deployment guardrails",
        None,
        None,
        "rollout controller: step schedule, canary analysis, abort on a breach",
        ("serving/rollout_controller.py::tick", "serving/canary_analysis.py::analyse"),
    ),
    Equivalent(
        "Request/response capture",
        "SageMaker Data Capture",
        "Vertex AI request-response logging",
        "Azure ML model data collection",
        "SQL prediction log, joined with feedback labels by request id",
        ("serving/prediction_log.py", "serving/log_reader.py"),
    ),
    Equivalent(
        "Model monitoring (drift, quality)",
        "SageMaker Model Monitor",
        "Vertex AI Model Monitoring",
        "Azure ML model monitoring",
        "data, prediction, concept and attribution drift plus anomaly checks",
        ("monitoring/checks.py::run_checks", "flows/monitoring_flow.py"),
    ),
    Equivalent(
        "Explainability and bias checks",
        "SageMaker Clarify",
        "Vertex Explainable AI",
        "Azure ML Responsible AI dashboard",
        "permutation attribution (and its drift) and per-slice parity in the gate",
        ("monitoring/attribution_drift.py::attribution", "pipelines/slices.py"),
    ),
    Equivalent(
        "Batch scoring",
        "SageMaker Batch Transform",
        "Vertex AI batch prediction",
        "Azure ML batch endpoints",
        "the Prefect flow `batch-scoring`: chunks of a large file on Dask, resumable, with lineage",
        ("flows/batch_scoring_flow.py::batch_scoring_flow", "flows/batch_scoring.py::score_chunk"),
    ),
    Equivalent(
        "Streaming inference (events from a broker)",
        "Amazon Kinesis Data Streams",
        "Pub/Sub with Dataflow",
        "Azure Event Hubs",
        "a Redis Streams consumer group of stream-score workers, logging each prediction once by message id",
        ("serving/stream_worker.py::StreamWorker", "serving/stream_messages.py::may_ack"),
    ),
    Equivalent(
        "Feature store",
        "SageMaker Feature Store",
        "Vertex AI Feature Store",
        "Azure ML managed feature store",
        "Feast (local): point-in-time training sets from the offline store, an online store /v1/predict reads",
        ("pipelines/feature_store.py::historical", "pipelines/feature_store.py::online"),
    ),
    Equivalent(
        "Metrics, dashboards and alerts",
        "Amazon CloudWatch",
        "Google Cloud Monitoring",
        "Azure Monitor",
        "Prometheus metrics and alert rules, a Grafana dashboard",
        ("serving/metrics.py::Metrics", "monitoring/prometheus/alerts.yml"),
    ),
    Equivalent(
        "Secrets management",
        "AWS Secrets Manager",
        "Secret Manager",
        "Azure Key Vault",
        "secrets from the environment or a Kubernetes Secret, never in the repository, redacted in output",
        ("k8s/base/secrets.yaml", "core/redact.py::redact"),
    ),
    Equivalent(
        "Audit trail (who changed what, when)",
        "AWS CloudTrail",
        "Cloud Audit Logs",
        "Azure Monitor activity log",
        "the registry's audit log: every alias move with actor, time and reason",
        ("pipelines/audit.py::append_entry", "pipelines/registry.py::audit_log"),
    ),
    Equivalent(
        "Data integration (ETL) pipelines",
        "AWS Glue",
        "Cloud Data Fusion",
        "Azure Data Factory",
        "the ingest and validate steps: DVC stages and the first tasks of the training flow",
        ("dvc.yaml", "pipelines/validation.py::validate_file"),
    ),
    Equivalent(
        "Object storage for data and model files",
        "Amazon S3",
        "Cloud Storage",
        "Azure Blob Storage",
        "a DVC remote on disk for data (.dvc/config) and MLflow's artifact folder for models",
        (".dvc/config", "pipelines/tracking.py"),
    ),
    Equivalent(
        "Container registry and managed Kubernetes",
        "Amazon ECR and EKS",
        "Artifact Registry and GKE",
        "Azure Container Registry and AKS",
        "Dockerfiles tagged by commit, kustomize manifests (validated offline)",
        ("docker/api.Dockerfile", "k8s/base/kustomization.yaml"),
    ),
)


def check_cloud_map(rows: Sequence[Equivalent], root: Path) -> list[str]:
    """Every problem: a row naming no cloud product, or a local path or symbol that does not exist."""
    problems: list[str] = []
    for row in rows:
        if not (row.sagemaker or row.vertex or row.azure):
            problems.append(f"{row.capability}: name the product on at least one platform")
        if not row.built and not row.ours.startswith("not built"):
            problems.append(f"{row.capability}: no local path; say 'not built: ...' in `ours`")
        problems += reference_problems(row.local, (), root, row.capability)
    return problems
