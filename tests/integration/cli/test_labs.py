"""`mlops-lab lab setup N` starts a lab and `lab check N` judges only a started lab (exit codes, hints)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app

pytestmark = pytest.mark.integration
WIDE = {"COLUMNS": "400"}


def test_a_lab_is_checked_only_after_setup_starts_it(tmp_path: Path) -> None:
    env = {**WIDE, "MLOPS_STATE_DIR": str(tmp_path / "state")}
    before = CliRunner().invoke(app, ["lab", "check", "2"], env=env)
    assert before.exit_code == 1
    assert "never started in this state" in before.output
    assert "run `mlops-lab lab setup 2`: the check then counts only what you do after it" in before.output

    started = CliRunner().invoke(app, ["lab", "setup", "2"], env=env)
    assert started.exit_code == 0, started.output
    assert "lab 2 started at " in started.output
    assert (tmp_path / "state" / "labs" / "started.json").is_file()

    after = CliRunner().invoke(app, ["lab", "check", "2"], env=env)
    assert after.exit_code == 1  # started, but no champion to trace yet
    assert "met" in after.output
    assert "what happened before does not count" in after.output
    assert "no champion alias in the registry" in after.output


def test_setup_of_an_unknown_lab_exits_1_and_lists_the_labs(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["lab", "setup", "99"], env={**WIDE, "MLOPS_STATE_DIR": str(tmp_path / "s")})
    assert result.exit_code == 1
    assert "no lab 99; the labs are: 1 Block a bad batch" in result.output
    assert not (tmp_path / "s").exists()
