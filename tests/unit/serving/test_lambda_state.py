"""On a real Lambda, state that would stay in one execution environment is refused at the cold start.

`external_state_problems` is pure: the settings and the environment variables in, the reasons out.
"""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from serving.lambda_handler import LAMBDA_ENV, external_state_problems

ON_LAMBDA = {LAMBDA_ENV: "mlops-lab-predict"}
SHARED = {
    "tracking_uri": "https://mlflow.example.internal",
    "prediction_log_url": "postgresql+psycopg://mlops@db.example.internal/mlops",
    "feedback_key": "example-feedback-key-for-tests",
}


def settings(tmp_path: Path, **fields: str) -> Settings:
    return Settings(project_dir=tmp_path, state_dir=tmp_path / "state", **fields)  # type: ignore[arg-type]


def test_off_lambda_local_sqlite_is_fine(tmp_path: Path) -> None:
    assert external_state_problems(settings(tmp_path), {}) == []


def test_on_lambda_every_local_store_and_the_per_process_feedback_key_are_named(tmp_path: Path) -> None:
    problems = external_state_problems(settings(tmp_path), ON_LAMBDA)
    assert [p.split(" ")[0] for p in problems] == [
        "MLOPS_TRACKING_URI",
        "MLOPS_PREDICTION_LOG_URL",
        "MLOPS_FEEDBACK_KEY",
    ]


def test_on_lambda_shared_stores_and_a_fixed_key_pass(tmp_path: Path) -> None:
    assert external_state_problems(settings(tmp_path, **SHARED), ON_LAMBDA) == []
    only_log = {k: v for k, v in SHARED.items() if k != "prediction_log_url"}
    assert len(external_state_problems(settings(tmp_path, **only_log), ON_LAMBDA)) == 1
