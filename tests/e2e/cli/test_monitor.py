"""`mlops-lab monitor` refuses clearly when the prediction log is unreachable: a few lines, no traceback.

The CLI runs in a subprocess against a PostgreSQL URL on a refused loopback port, with a password in it.
Before the refusal was handled, Prefect printed about 470 lines of tracebacks and the command exited 1
without saying what to fix.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
CLI = str(Path(sys.executable).with_name("mlops-lab"))
PASSWORD = "secret-test-password"


def _refused_port() -> int:
    with socket.socket() as sock:  # bound, never listening: a connection to it is refused at once
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "MLOPS_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "100"}
    for key in [k for k in env if k.startswith("PREFECT_")]:
        del env[key]
    return env


def test_missing_reference_data_is_a_short_refusal_naming_the_fix(tmp_path: Path) -> None:
    """A fresh project: no champion and no ingested data, so there is nothing to compare production with."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "params.yaml", project / "params.yaml")
    env = {**_env(tmp_path), "MLOPS_PROJECT_DIR": str(project)}
    done = subprocess.run(
        [CLI, "monitor", "--dry-run"], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "data file not found" in said
    assert "mlops-lab ingest" in said
    assert "Traceback" not in said
    assert len(said.strip().splitlines()) <= 8, said


def test_an_unreachable_prediction_log_is_a_short_refusal_without_the_password(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env["MLOPS_PREDICTION_LOG_URL"] = f"postgresql+psycopg://mlops:{PASSWORD}@127.0.0.1:{_refused_port()}/mlops"
    done = subprocess.run([CLI, "monitor", "--dry-run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "the prediction log cannot be reached" in said
    assert "MLOPS_PREDICTION_LOG_URL" in said
    assert "mlops:***@127.0.0.1" in said
    assert PASSWORD not in said
    assert "Traceback" not in said
    assert len(said.strip().splitlines()) <= 8, said
