"""MLflow's in-process store caches against a real SQLite store: a wiped store is opened afresh."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.mlflow_config import forget_mlflow_stores
from core.settings import Settings

pytestmark = pytest.mark.integration


def _names() -> list[str]:
    from mlflow import MlflowClient

    return [model.name for model in MlflowClient().search_registered_models()]


def test_a_store_wiped_in_this_process_is_read_afresh_once_forgotten(settings: Settings, empty_mlflow_db: Path) -> None:
    """What a demo that wipes its own state and runs again relies on (`lab.demos.own_state`)."""
    from mlflow import MlflowClient

    MlflowClient().create_registered_model("before-the-wipe")
    db = settings.state / "mlflow.db"
    db.unlink()
    shutil.copyfile(empty_mlflow_db, db)  # a new, empty store at the same URI
    # The control: MLflow's cached engine still holds a connection to the deleted file.
    assert _names() == ["before-the-wipe"]
    forget_mlflow_stores()
    assert _names() == []
    MlflowClient().create_registered_model("after-the-wipe")
    assert _names() == ["after-the-wipe"]
