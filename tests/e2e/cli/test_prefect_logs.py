"""Prefect's Logs tab gets each run's log while the console stays quiet (issue 15).

`mlops-lab train` runs the `training` flow on the CLI's own Prefect API (its database in the state
folder); then another process opens the same API and reads the run back: its name, its tags and its
INFO log lines, which the console never showed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
CLI = str(Path(sys.executable).with_name("mlops-lab"))

READ_BACK = r"""
import json
from core.settings import Settings
from core.startup import configure_environment

configure_environment(Settings())  # the same Prefect home and database as the CLI's run
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

with get_client(sync_client=True) as client:
    runs = client.read_flow_runs()
    out = []
    for run in runs:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
        out.append({"name": run.name, "tags": sorted(run.tags), "logs": [[l.level, l.message] for l in logs]})
print(json.dumps(out))
"""


def test_a_training_run_logs_to_prefect_and_not_to_the_console(tmp_path: Path) -> None:
    env = {**os.environ, "MLOPS_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "120"}
    for key in [k for k in env if k.startswith("PREFECT_")]:
        del env[key]  # the CLI configures its own local Prefect API under the state folder

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)

    assert run(CLI, "ingest").returncode == 0
    trained = run(CLI, "train")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    console = trained.stdout + trained.stderr
    assert "INFO" not in console  # Prefect's run log stays off the console...
    assert "training outcome" not in console
    assert trained.stderr == ""
    assert len(console.splitlines()) < 20

    read = run(sys.executable, "-c", READ_BACK)
    assert read.returncode == 0, read.stderr[-3000:]
    (flow_run,) = [r for r in json.loads(read.stdout.strip().splitlines()[-1]) if r["name"] == "train-raw"]
    assert flow_run["tags"] == ["mlops-lab", "purpose:train", "training"]
    messages = [message for level, message in flow_run["logs"] if level == 20]  # ...and reaches the Logs tab
    assert "training on the ingested raw data (search: False)" in messages
    assert any(m.startswith("training outcome: registered, version 1 as champion; MLflow run ") for m in messages)
    assert "Finished in state Completed()" in messages  # Prefect's own INFO lines about the run too
