"""Shared fixtures: every test gets its own state folder, so no test sees another's registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.settings import Settings, configure_runtime
from pipelines.params import Params, load_params

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def params() -> Params:
    return load_params(REPO / "params.yaml")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings pointing at a fresh state folder under tmp_path (real SQLite MLflow store)."""
    s = Settings(project_dir=REPO, state_dir=tmp_path / "state")
    configure_runtime(s)
    return s


@pytest.fixture(scope="session")
def iris_frame(params: Params):
    from pipelines.data import build_raw_frame

    return build_raw_frame(params.dataset, params.ingest)
