"""MLflow pointed at our stores once, at start-up; clients made without touching global state.

Concept: configuration management (C48) for the tracking and registry stores. MLflow's fluent API
(``mlflow.start_run``, ``mlflow.register_model``, ``models:/`` URIs) reads process-wide URIs, so they
are set once by `configure_mlflow`, called from ``core.startup.configure_runtime`` at the edge (the
CLI, the app's lifespan, a deployment's entry point, a test's settings fixture). `mlflow_client`
only builds a client for the settings it is given. Code that relies on the fluent API calls
`require_mlflow_configured` first: a process configured for another store gets a clear error instead
of a run or a model version written to the wrong registry.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from core.redact import redact

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from core.settings import Settings


class MlflowNotConfiguredError(RuntimeError):
    """The process's MLflow URIs are not the ones these settings name."""


def configure_mlflow(settings: Settings) -> None:
    """Point MLflow's fluent API at the settings' tracking and registry stores (once, at start-up).

    Through MLflow's own environment variables, so a command that never touches MLflow does not pay for
    importing it, and child processes inherit the stores (as ``mlflow.set_tracking_uri`` does itself); if
    MLflow is already imported, its process-wide URIs are set too (they take precedence over the variables).
    The HTTP client's timeout and retries are bounded from the settings too (`http_bounds`).
    """
    os.environ["MLFLOW_TRACKING_URI"] = settings.mlflow_tracking_uri
    os.environ["MLFLOW_REGISTRY_URI"] = settings.mlflow_registry_uri
    os.environ.update(http_bounds(settings))
    if "mlflow" in sys.modules:
        import mlflow

        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        mlflow.set_registry_uri(settings.mlflow_registry_uri)


def http_bounds(settings: Settings) -> dict[str, str]:
    """MLflow's HTTP client limits from the settings, as the environment variables MLflow reads per request.

    MLflow's defaults (7 retries with exponential backoff, 120 s per attempt) make one call to a tracking
    server that is down take minutes; a caller with its own retry loop (the serving poller, the rollout
    controller) wants each call to fail within seconds: at most (retries + 1) x timeout, plus backoff.
    MLflow reads these variables on every request (``mlflow.environment_variables``), so setting them
    before the first call is enough, whichever client makes it.
    """
    return {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(settings.registry_timeout_s),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(settings.registry_retries),
    }


def mlflow_client(settings: Settings) -> MlflowClient:
    """A client for the settings' tracking and registry stores; changes nothing else."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_registry_uri)


def require_mlflow_configured(settings: Settings) -> None:
    """Raise unless MLflow's fluent API points at the settings' stores.

    Raises:
        MlflowNotConfiguredError: another store is configured (or none was); names both sides.
    """
    import mlflow

    have = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    want = (settings.mlflow_tracking_uri, settings.mlflow_registry_uri)
    if have != want:
        raise MlflowNotConfiguredError(
            redact(
                f"MLflow points at tracking {have[0]!r} / registry {have[1]!r}, but these settings name "
                f"{want[0]!r} / {want[1]!r}: call core.startup.configure_runtime(settings) once at start-up"
            )
        )


def forget_mlflow_stores() -> None:
    """Close the stores MLflow keeps open in this process, so the next use opens them afresh.

    MLflow caches one store object per URI and, for a SQL store, an engine whose pool keeps connections
    open. Call this before deleting a store's files in a process that used it (a demo wiping its own
    state to run again): otherwise a SQLite connection still reads the deleted file, and the registry
    answers with versions whose artefacts are gone. Reaches into MLflow's caches (private names, checked
    by ``tests/unit/core/test_mlflow_config.py`` on every upgrade).
    """
    if "mlflow" not in sys.modules:
        return  # nothing opened in this process
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistrySqlStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingSqlStore
    from mlflow.tracking._model_registry.registry import ModelRegistryStoreRegistry
    from mlflow.tracking._tracking_service.registry import TrackingStoreRegistry

    TrackingStoreRegistry._get_store_with_resolved_uri.cache_clear()
    ModelRegistryStoreRegistry._get_store_with_resolved_uri.cache_clear()
    for store in (TrackingSqlStore, RegistrySqlStore):
        with store._engine_map_lock:
            engines = list(store._engine_map.values())
            store._engine_map.clear()
        for engine in engines:
            engine.dispose()
