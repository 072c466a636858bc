"""The issue's "done when", through the real CLI in subprocesses: train twice → champion and a
gated challenger; a corrupted batch is refused with a readable report and no registry change;
a registered version reproduces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
CLI = str(Path(sys.executable).with_name("mlops-lab"))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    state = tmp_path_factory.mktemp("cli-state")
    out = {**os.environ, "MLOPS_STATE_DIR": str(state), "COLUMNS": "120"}
    for key in [k for k in out if k.startswith("PREFECT_")]:
        del out[key]  # each CLI process configures its own local Prefect API under the state dir
    return out


def mlops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_train_twice_then_refuse_a_corrupted_batch_then_reproduce(env: dict[str, str], tmp_path: Path) -> None:
    assert mlops(env, "ingest").returncode == 0

    first = mlops(env, "train")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "as alias champion" in first.stdout

    second = mlops(env, "train")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "as alias challenger" in second.stdout

    before = mlops(env, "registry", "list").stdout
    bad = tmp_path / "bad.csv"
    assert mlops(env, "generate-batch", "unknown-class", "--seed", "4", "--output", str(bad)).returncode == 0
    refused = mlops(env, "train", "--data", str(bad))
    assert refused.returncode == 1
    assert "invalid data" in refused.stdout
    assert "species" in refused.stdout  # the report names the column
    assert "Traceback" not in refused.stdout + refused.stderr  # the refusal is the whole output
    assert len((refused.stdout + refused.stderr).splitlines()) < 20
    missing = mlops(env, "train", "--data", str(tmp_path / "absent.csv"))
    assert missing.returncode == 1
    assert "data file not found" in missing.stdout
    assert "Traceback" not in missing.stdout + missing.stderr
    assert mlops(env, "registry", "list").stdout == before

    reproduced = mlops(env, "reproduce", "1")
    assert reproduced.returncode == 0, reproduced.stdout + reproduced.stderr
    assert "identical metrics and predictions" in reproduced.stdout


def test_train_search_runs_the_trials_through_the_flow_and_says_what_won(tmp_path: Path) -> None:
    env = {**os.environ, "MLOPS_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "200"}
    for key in [k for k in env if k.startswith("PREFECT_")]:
        del env[key]
    wrong = mlops(env, "train", "--trials", "3")
    assert wrong.returncode == 2
    assert "use it with --search" in wrong.stdout + wrong.stderr
    assert mlops(env, "ingest").returncode == 0
    searched = mlops(env, "train", "--search", "--trials", "5")
    assert searched.returncode == 0, searched.stdout + searched.stderr
    line = next(x for x in searched.stdout.splitlines() if x.startswith("search: "))
    assert line.startswith("search: 5 trials (")
    assert "pruned); best by CV: trial " in line
    assert "(C=" in line
    assert "CV accuracy 0.9" in line
    assert "as alias champion" in searched.stdout
