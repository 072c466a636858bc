"""Shared fixtures: every test gets its own state folder, so no test sees another's registry.

Creating an MLflow SQLite store runs all of MLflow's schema migrations (seconds each time), so one
empty store is created per session and copied into each test's state folder: still a real,
separate MLflow store per test, at the cost of a file copy.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.params import Params, load_params
from core.settings import Settings
from core.startup import configure_runtime

REPO = Path(__file__).resolve().parents[1]
MakeSettings = Callable[..., Settings]
POSTGRES_URL = os.environ.get("MLOPS_TEST_POSTGRES_URL")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not POSTGRES_URL, reason="set MLOPS_TEST_POSTGRES_URL to also run on PostgreSQL"),
        ),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A shared-database URL: a SQLite file here, and PostgreSQL too when MLOPS_TEST_POSTGRES_URL is set.

    On PostgreSQL the database outlives the test: a test drops the tables it uses before it starts.
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'predictions.db'}"
    assert POSTGRES_URL is not None
    return POSTGRES_URL


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port, empty, files in tmp_path; stopped after the test.

    Without redis-server the test is skipped (in CI: failed) with the install command (tests/system_tools.py).
    """
    from ops.local_redis import redis_on_loopback
    from tests.system_tools import system_tool

    with redis_on_loopback(tmp_path / "redis", system_tool("redis-server")) as url:
        yield url


@pytest.fixture(scope="session", autouse=True)
def backup_key_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Backups sign with a key file of the session, never the user's own (~/.config/mlops-lab/backup.key)."""
    path = tmp_path_factory.mktemp("backup-key") / "backup.key"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_BACKUP_KEY_FILE", str(path))
        patch.delenv("MLOPS_BACKUP_KEY", raising=False)
        yield path


@pytest.fixture(scope="session")
def params(tmp_path_factory: pytest.TempPathFactory) -> Params:
    """params.yaml, with the gate's holdout file in a session folder (tests never write into the repo)."""
    loaded = load_params(REPO / "params.yaml")
    holdout = loaded.gate.holdout.model_copy(update={"path": str(tmp_path_factory.mktemp("holdout") / "holdout.csv")})
    return loaded.model_copy(update={"gate": loaded.gate.model_copy(update={"holdout": holdout})})


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its schema created and nothing in it."""
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture(scope="session")
def make_settings(empty_mlflow_db: Path) -> MakeSettings:
    """Build Settings for a fresh state folder holding a copy of the empty MLflow store."""

    def build(state_dir: Path, **overrides: Any) -> Settings:
        # In-process apps log requests through `logging` (caplog sees them); the stdout writer is for real
        # servers, and a module-scoped app writing after pytest's capture ended only adds noise.
        overrides.setdefault("access_log", False)
        # In-process apps in tests expect their models once the lifespan ran: wait for a healthy local registry
        # (bounded); tests of a registry outage set their own, short wait.
        overrides.setdefault("startup_model_wait_s", 120.0)
        settings = Settings(project_dir=REPO, state_dir=state_dir, **overrides)
        configure_runtime(settings)
        target = settings.state / "mlflow.db"
        if settings.tracking_uri is None and not target.exists():
            shutil.copyfile(empty_mlflow_db, target)
        return settings

    return build


@pytest.fixture
def settings(tmp_path: Path, make_settings: MakeSettings) -> Settings:
    """Settings pointing at a fresh state folder under tmp_path (a real SQLite MLflow store)."""
    return make_settings(tmp_path / "state")


@pytest.fixture(scope="session")
def iris_frame(params: Params) -> pd.DataFrame:
    from pipelines.data import build_raw_frame

    return build_raw_frame(params.dataset, params.ingest)


@pytest.fixture(scope="session")
def demo_context(params: Params) -> Callable[..., Any]:
    """A LabContext for demo tests: the dataset path points into the test's state, not the repo."""
    from core.context import LabContext

    def build(settings: Settings) -> LabContext:
        dataset = params.dataset.model_copy(update={"path": str(settings.state / "iris.csv")})
        return LabContext(settings=settings, params=params.model_copy(update={"dataset": dataset}))

    return build


@pytest.fixture(scope="session")
def run_demo() -> Callable[..., str]:
    """Run a demo module with a Narrator over a captured console; returns what it printed."""
    import importlib
    import io

    from rich.console import Console

    from lab.narrate import Narrator

    def run(module: str, ctx: Any, width: int = 160) -> str:
        buffer = io.StringIO()
        importlib.import_module(f"lab.demos.{module}").run(
            Narrator(Console(file=buffer, width=width, color_system=None)), ctx
        )
        return buffer.getvalue()

    return run
