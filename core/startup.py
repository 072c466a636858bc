"""Start-up of a process: the state folders, the libraries' offline settings, MLflow's stores.

Concept: configuration management (C48) and "no side effects at import". `configure_runtime` is
called once by each edge (the CLI's context, the app's lifespan, a test's settings fixture, a demo
that runs on a state folder of its own), never at import time.
"""

from __future__ import annotations

import logging
import os

from core.mlflow_config import configure_mlflow
from core.settings import Settings

STATE_MARKER = ".mlops-lab-state"  # ops/reset.py removes only folders that carry it

# Library telemetry and chatter that must be off for an offline, quiet run.
_QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    # Prefect's own chatter stays at WARNING, but a flow's and a task's run loggers keep INFO, so each run's
    # log reaches the API handler (the Logs tab); the console handler alone drops what is below WARNING.
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL": "INFO",
    "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "INFO",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
    "PREFECT_UI_ENABLED": "false",
    "GIT_PYTHON_REFRESH": "quiet",
    "DASK_LOGGING__DISTRIBUTED": "warning",  # a LocalCluster's start and stop are a screen of INFO lines
}


def configure_environment(settings: Settings) -> None:
    """Point the libraries (Prefect, DVC, MLflow) at the settings' state folder; touches no file.

    The CLI does this first, before any command imports Prefect (which reads its settings on import).
    Existing environment variables win, so a user can still point Prefect at a real server; MLflow's
    tracking and registry URIs are set from the settings every time (`core.mlflow_config`).
    """
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    os.environ.setdefault(
        "PREFECT_SERVER_DATABASE_CONNECTION_URL",
        f"sqlite+aiosqlite:///{settings.prefect_home / 'prefect.db'}",
    )
    os.environ.setdefault("DVC_SITE_CACHE_DIR", str(settings.state / "dvc-site-cache"))
    # Named chatty loggers: registration notices, and "pip version unknown" in a uv venv without pip.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    configure_mlflow(settings)


def configure_runtime(settings: Settings) -> None:
    """Create the state folders and point the libraries at them (`configure_environment`).

    The state folder is marked as ours (``ops/reset.py`` removes only marked folders) only when this
    call creates it or finds it empty: a folder that already held other files (``MLOPS_STATE_DIR``
    pointed at a home directory, say) is used but never marked, so a reset can never remove it.
    """
    state = settings.state
    ours = not state.exists() or (state / STATE_MARKER).exists() or not any(state.iterdir())
    for folder in (state, settings.prefect_home, settings.reports_dir):
        folder.mkdir(parents=True, exist_ok=True)
    if ours:
        (state / STATE_MARKER).touch()
    configure_environment(settings)
