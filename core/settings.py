"""Runtime settings: where state lives and which services to talk to.

Concept: configuration management (C48). Paths, URIs and secrets come from the environment
(prefix ``MLOPS_``); model and rollout knobs live in the DVC-tracked ``params.yaml`` instead.
Everything defaults to a project-local, gitignored state folder so the whole loop runs offline
on embedded engines (MLflow on SQLite, Prefect's ephemeral API). Pointing the same code at real
servers is a matter of setting ``MLOPS_TRACKING_URI`` and friends, never of changing code.

The environment is read where a process starts (the CLI, the app factory, a deployment's entry
point) by building one ``Settings()``; everything below takes that object as an argument, so a test
or a demo on another state folder builds its own and passes it in. Its JSON form (what Prefect
stores as a flow run's parameters) and its repr carry no password and no token.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_serializer, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.redact import redact

# `mlops-lab dataset use PARAMS` writes the chosen params file here, in the state folder; read when
# MLOPS_PARAMS_FILE is unset (the environment variable wins).
ACTIVE_PARAMS_FILE = "active-params"

# Fields that may hold a password (in a URL) or are a secret themselves.
_URL_FIELDS = ("tracking_uri", "registry_uri", "artifact_root", "prediction_log_url", "redis_url")


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


def _default_backup_key_file() -> Path:
    """Per user, outside the state folder (lost with it) and the repository (committed, shared)."""
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "mlops-lab" / "backup.key"


def _read_choice(path: Path) -> Path | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return Path(text) if text else None


def _model_name_in(params_file: Path) -> str | None:
    """The top-level ``model_name`` of a params file, if it has one (errors are load_params' to report)."""
    import yaml

    try:
        raw = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    name = raw.get("model_name") if isinstance(raw, dict) else None
    return name if isinstance(name, str) and name else None


class Settings(BaseSettings):
    """One settings object for the CLI, the flows, the API and the tests."""

    model_config = SettingsConfigDict(env_prefix="MLOPS_", extra="ignore")

    project_dir: Path = Field(default_factory=Path.cwd, description="Repository root (holds params.yaml).")
    state_dir: Path | None = Field(default=None, description="Local state folder; default <project_dir>/.state.")
    params_file: Path | None = Field(default=None, description="Parameters file; default <project_dir>/params.yaml.")
    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; default SQLite in the state folder."
    )
    registry_uri: str | None = Field(default=None, description="MLflow registry URI; default = tracking URI.")
    artifact_root: str | None = Field(default=None, description="Artifact location for new experiments.")
    prediction_log_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the prediction log; default SQLite in state."
    )
    poll_interval_s: float = Field(default=5.0, gt=0, description="How often serving re-reads aliases and state.")
    admin_token: str | None = Field(default=None, description="Bearer token for /v1/admin/*; admin API off if unset.")
    approver_tokens: dict[str, str] = Field(
        default_factory=dict, description="Personal approval tokens, a JSON object name -> token (each at least 16 "
        "characters): when set, /v1/admin/approval/* takes a person's own token, the actor is its owner (X-Actor "
        "cannot name another), and the admin token alone cannot ask for or answer an approval."
    )  # fmt: skip
    approver_token: str | None = Field(
        default=None, description="Your own approval token (one of the service's approver_tokens): "
        "`mlops-lab admin approval ...` sends it instead of the admin token."
    )  # fmt: skip
    feedback_key: str | None = Field(
        default=None, description="Key of the feedback tokens (HMAC); default derived from admin_token."
    )
    user_key_secret: str | None = Field(
        default=None, description="Key of the pseudonymous user keys (keyed hash of X-User-Id); default derived "
        "from the feedback key. Rotate by moving the old value to user_key_previous."
    )  # fmt: skip
    user_key_previous: list[str] = Field(
        default_factory=list, description="Earlier user-key secrets, a JSON list, newest first: erasure still finds "
        "rows written under them; drop one once retention_days have passed since the rotation."
    )  # fmt: skip
    retention_days: int = Field(
        default=30, ge=1, description="Prediction and feedback rows, and the monitoring reports built from them, "
        "older than this many days are deleted by the retention flow (mlops-lab privacy retention)."
    )  # fmt: skip
    retention_schedule: str = Field(
        default="17 3 * * *", description="Cron of the scheduled retention flow (mlops-lab privacy retention --serve)."
    )
    max_body_bytes: int = Field(default=1 << 20, gt=0, description="Largest request body accepted (413 above).")
    rate_limit_per_s: float = Field(
        default=200.0, ge=0, description="Requests per second per client IP (429 above); 0 turns the limit off."
    )
    rate_limit_burst: int = Field(default=400, ge=1, description="Requests a client may send at once before 429s.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed by CORS, a JSON list; empty = CORS off."
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="A client must send a request's headers within this long of starting it "
        "(or of connecting); else 408 and the connection is closed (serving.slow_clients)."
    )  # fmt: skip
    body_timeout_s: float = Field(
        default=30.0, gt=0, description="A request body must arrive within this long of its headers; else 408 "
        "and the connection is closed (serving.limits)."
    )  # fmt: skip
    max_concurrency: int = Field(
        default=1000, ge=1, description="Open connections or requests in flight per worker; a request beyond it "
        "is answered 503 at once (uvicorn's limit_concurrency)."
    )  # fmt: skip
    registry_timeout_s: int = Field(
        default=5, ge=1, description="Seconds before one MLflow HTTP request gives up (MLFLOW_HTTP_REQUEST_TIMEOUT)."
    )
    registry_retries: int = Field(
        default=1, ge=0, le=10, description="Retries of a failed MLflow HTTP request (MLFLOW_HTTP_REQUEST_MAX_RETRIES)."
    )
    startup_model_wait_s: float = Field(
        default=10.0, ge=0, description="Start-up waits at most this long for the first models; then the "
        "service starts without them (/healthz answers, /readyz says why it is not ready)."
    )  # fmt: skip
    access_log: bool = Field(default=True, description="One JSON line per request on stdout (serving.access).")
    micro_batch_rows: int = Field(
        default=64, ge=0, description="Score requests that arrive together in one model call, up to this many "
        "rows (serving.micro_batch); 0 scores each request alone."
    )  # fmt: skip
    explain_queue: int = Field(
        default=8, ge=1, description="Explanations that may wait per process while one runs (they run one at a "
        "time); POST /v1/explain answers 503 with Retry-After beyond it (serving.explain_api)."
    )  # fmt: skip
    serving_runtime: Literal["auto", "sklearn"] = Field(
        default="auto", description="What scores in serving: auto = ONNX Runtime for a version with a parity-checked "
        "ONNX file, else its scikit-learn Pipeline; sklearn = always the Pipeline (serving.model_cache)."
    )  # fmt: skip
    batch_runner: Literal["dask", "threads"] = Field(
        default="dask", description="Where the batch-scoring flow runs its chunks: dask = prefect-dask's task "
        "runner (a LocalCluster, or the scheduler at dask_address); threads = threads of this one process."
    )  # fmt: skip
    batch_workers: int = Field(
        default=2, ge=1, le=64, description="Workers of the batch-scoring flow: processes of the LocalCluster "
        "(one thread each), or threads with batch_runner=threads. A remote scheduler has its own."
    )  # fmt: skip
    dask_address: str | None = Field(
        default=None, description="Address of a running Dask scheduler (tcp://host:8786) for batch scoring; "
        "unset = a LocalCluster on this machine. Its workers must see the output folder and a Prefect API."
    )  # fmt: skip
    feature_repo: Path | None = Field(
        default=None, description="Folder of the Feast feature store (offline Parquet, online SQLite, registry); "
        "default <state>/feature_repo. Serving reads it only for /v1/predict rows sent as an entity id."
    )  # fmt: skip
    feature_max_age_s: float = Field(
        default=86400.0, gt=0, description="Serving by entity id: online features measured longer ago than "
        "this are stale, and the row is refused (422) rather than scored on old values."
    )  # fmt: skip
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="The Redis server whose streams carry feature events to "
        "the stream-scoring workers (mlops-lab stream-score); a password in it is never printed."
    )  # fmt: skip
    stream_name: str = Field(
        default="mlops:features", min_length=1, description="The Redis stream of feature events; poison messages "
        "go to <stream_name>:dead, the dead-letter stream."
    )  # fmt: skip
    stream_group: str = Field(
        default="scorers", min_length=1, description="The consumer group the stream-scoring workers share: each "
        "message goes to one of them."
    )  # fmt: skip
    stream_claim_idle_s: float = Field(
        default=30.0, gt=0, description="A message pending (delivered, not acknowledged) longer than this is "
        "claimed by another worker: its consumer is presumed dead."
    )  # fmt: skip
    stream_features: bool = Field(
        default=False, description="Stream-scoring workers keep each specimen's rolling features (its last 5 "
        "events, when a message names a specimen_id) and push them to the feature store's online store "
        "(feature_repo, its definitions applied by `mlops-lab features history`); off: scoring only."
    )  # fmt: skip
    backup_key: str | None = Field(
        default=None, description="Secret that signs backup manifests (HMAC-SHA256); default: the key file."
    )
    backup_key_file: Path = Field(
        default_factory=_default_backup_key_file,
        description="Backup key file, made on the first backup (0600); default $XDG_CONFIG_HOME/mlops-lab/backup.key.",
    )
    restore_max_bytes: int = Field(
        default=16 << 30, gt=0, description="Most bytes a restore writes, whatever a signed manifest declares."
    )
    approval: Literal["automatic", "required"] = Field(
        default="automatic", description="Promotion of a challenger: automatic (development mode) or required = "
        "production mode: a person other than the requester approves it first (pipelines.registry)."
    )  # fmt: skip
    api_url: str = Field(default="http://127.0.0.1:8000", description="Base URL of a running service (admin CLI).")
    experiment_name: str = "mlops-lab"
    model_name: str = "iris-classifier"
    actor: str = Field(default_factory=_default_actor, description="Who is acting, recorded in the audit log.")

    _params_source: str = PrivateAttr(default="default")
    _model_name_source: str = PrivateAttr(default="default")

    @model_validator(mode="after")
    def _active_dataset(self) -> Settings:
        """The params file chosen with `dataset use` (unless MLOPS_PARAMS_FILE is set) and its model name."""
        explicit = self.model_fields_set
        if "params_file" in explicit:
            self._params_source = "env"
        elif (chosen := _read_choice(self.state / ACTIVE_PARAMS_FILE)) is not None:
            self.params_file, self._params_source = chosen, "state"
        if "model_name" in explicit:
            self._model_name_source = "env"
        elif self.params_file is not None and (named := _model_name_in(self.params_file)):
            self.model_name, self._model_name_source = named, "params"
        return self

    @property
    def params_source(self) -> str:
        """Where the params file came from: ``env`` (MLOPS_PARAMS_FILE), ``state`` (`dataset use`) or ``default``."""
        return self._params_source

    @property
    def model_name_source(self) -> str:
        """Where the model name came from: ``env`` (MLOPS_MODEL_NAME), ``params`` (its model_name) or ``default``."""
        return self._model_name_source

    # ---- derived locations -------------------------------------------------------------
    @property
    def state(self) -> Path:
        return (self.state_dir or self.project_dir / ".state").resolve()

    @property
    def params_path(self) -> Path:
        return (self.params_file or self.project_dir / "params.yaml").resolve()

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.state / 'mlflow.db'}"

    @property
    def mlflow_registry_uri(self) -> str:
        return self.registry_uri or self.mlflow_tracking_uri

    @property
    def mlflow_artifact_root(self) -> str | None:
        """Artifacts of new experiments: the state folder, or None on a tracking server (it picks its store)."""
        if self.artifact_root:
            return self.artifact_root
        if self.mlflow_tracking_uri.startswith(("http://", "https://")):
            return None  # a served store (mlflow-artifacts:/...) every client reaches over HTTP, not this disk
        return (self.state / "mlartifacts").as_uri()

    @property
    def prediction_log_uri(self) -> str:
        return self.prediction_log_url or f"sqlite:///{self.state / 'predictions.db'}"

    @property
    def prefect_home(self) -> Path:
        return self.state / "prefect"

    @property
    def feature_store_dir(self) -> Path:
        return (self.feature_repo or self.state / "feature_repo").resolve()

    @property
    def reports_dir(self) -> Path:
        return self.state / "reports"

    @property
    def gx_dir(self) -> Path:
        return self.state / "gx"

    def resolve(self, path: str | Path) -> Path:
        """Resolve a path from params.yaml or the CLI against the project folder."""
        p = Path(path)
        return p if p.is_absolute() else (self.project_dir / p).resolve()

    # ---- serialised form: a flow run's parameters are stored and shown by Prefect ---------
    @field_serializer(*_URL_FIELDS, when_used="json")
    def _redact_url(self, value: str | None) -> str | None:
        return None if value is None else redact(value)

    @field_serializer(
        "admin_token", "approver_token", "backup_key", "feedback_key", "user_key_secret", when_used="json"
    )
    def _redact_token(self, value: str | None) -> str | None:
        return None if value is None else "***"

    @field_serializer("user_key_previous", when_used="json")
    def _redact_tokens(self, values: list[str]) -> list[str]:
        return ["***" for _ in values]

    @field_serializer("approver_tokens", when_used="json")
    def _redact_named_tokens(self, values: dict[str, str]) -> dict[str, str]:
        return dict.fromkeys(values, "***")

    def __repr_args__(self) -> Any:  # repr() in tracebacks and logs: no secrets either
        shown = self.model_dump(mode="json")
        return [(k, shown[k]) for k in type(self).model_fields]
