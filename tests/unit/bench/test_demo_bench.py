"""The demo benchmark times real CLI processes and refuses to report a run that failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.demo_bench import _timed_cli

REPO = Path(__file__).resolve().parents[3]


def test_a_cli_run_is_timed_as_a_separate_process(tmp_path: Path) -> None:
    assert _timed_cli(["--help"], tmp_path / "state", REPO) > 0


def test_a_failing_cli_run_is_an_error_not_a_figure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no-such-command"):
        _timed_cli(["no-such-command"], tmp_path / "state", REPO)


def test_a_failed_run_says_why_in_the_clis_own_words(tmp_path: Path) -> None:
    project = tmp_path / "project"  # a project without its data file: train refuses, saying so on stdout
    project.mkdir()
    (project / "params.yaml").write_text((REPO / "params.yaml").read_text())
    with pytest.raises(RuntimeError, match="data file not found"):
        _timed_cli(["train"], tmp_path / "state", project)
