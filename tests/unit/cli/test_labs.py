"""`mlops-lab lab show N` prints each lab's page and the command that checks it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from lab.labs import LABS

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5, 6, 7, 8, 9])
def test_lab_show_prints_the_page(number: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(REPO))
    result = CliRunner().invoke(app, ["lab", "show", str(number)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert LABS[number].title in result.output
    assert f"mlops-lab lab check {number}" in result.output
