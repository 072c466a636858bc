"""`mlops-lab rollout ...` drives the controller from a shell: start, status, pause, abort."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from core.params import Params
from pipelines.data import ingest
from pipelines.registry import current_aliases, list_versions
from pipelines.training_steps import run_training

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_rollout_commands_start_pause_resume_abort(
    tmp_path: Path, make_settings, params: Params, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path / "state")
    data = ingest(params.dataset, params.ingest, tmp_path / "iris.csv")
    runner = CliRunner()
    monkeypatch.setenv("MLOPS_STATE_DIR", str(settings.state))
    no_challenger = runner.invoke(app, ["rollout", "start"])
    assert no_challenger.exit_code == 1
    for _ in range(2):
        run_training(settings, params, data)

    started = runner.invoke(app, ["rollout", "start"])
    assert started.exit_code == 0, started.output
    assert f"weight {params.rollout.steps[0]:g} %" in started.output

    again = runner.invoke(app, ["rollout", "start"])
    assert again.exit_code == 1  # one rollout at a time

    waited = runner.invoke(app, ["rollout", "tick"])
    assert "action: wait" in waited.output  # no traffic: inconclusive, never a pass
    assert waited.output.count("error_rate_increase:") == 1, waited.output  # said by the analysis, not again
    assert "action: wait  waiting at 10 %" in waited.output

    assert runner.invoke(app, ["rollout", "pause", "--reason", "investigating"]).exit_code == 0
    assert "paused" in runner.invoke(app, ["rollout", "status"]).output
    assert runner.invoke(app, ["rollout", "resume"]).exit_code == 0

    aborted = runner.invoke(app, ["rollout", "abort", "--reason", "manual stop"])
    assert aborted.exit_code == 0, aborted.output
    status = runner.invoke(app, ["rollout", "status"]).output
    assert "aborted" in status
    assert "canary weight 0 %" in status
    picture = settings.reports_dir / "rollout" / "rollout-weights.png"  # drawn next to the state's reports
    assert picture.read_bytes()[:4] == b"\x89PNG"
    assert "rollout-weights.png" in status.replace("\n", "")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the picture's folder would go", encoding="utf-8")
    unwritable = runner.invoke(app, ["rollout", "status", "--picture", str(blocker / "weights.png")])
    assert unwritable.exit_code == 0, unwritable.output  # the status is still shown, the picture's failure said
    assert "aborted" in unwritable.output
    assert "could not draw the picture" in unwritable.output
    assert current_aliases(settings)["champion"] == "1"
    assert {v.version: v.status for v in list_versions(settings)}["2"] == "rejected"
