"""`mlops-lab explain-prediction --row ...`: the champion's (or a pinned version's) explanation of one row, offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.app import app
from core.params import Params
from pipelines.data import ingest
from pipelines.registry import load_version_model
from pipelines.training_steps import run_training

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROW = {"sepal_length": 5.9, "sepal_width": 3.0, "petal_length": 4.2, "petal_width": 1.5}


def test_the_command_explains_the_champion_and_its_numbers_add_up(
    tmp_path: Path, make_settings, params: Params, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path / "state")
    monkeypatch.setenv("MLOPS_STATE_DIR", str(settings.state))
    runner = CliRunner()
    assert runner.invoke(app, ["explain-prediction", "--row", json.dumps(ROW)]).exit_code == 2  # no champion yet
    assert run_training(settings, params, ingest(params.dataset, params.ingest, tmp_path / "iris.csv")).version == "1"

    shown = runner.invoke(app, ["explain-prediction", "--row", json.dumps(ROW), "--json"])
    assert shown.exit_code == 0, shown.output
    answer = json.loads(shown.output)
    pipeline = load_version_model(settings, "1")
    values = np.array([[ROW[f] for f in params.dataset.feature_names]])
    assert answer["explained_class"] == pipeline.predict(values)[0]
    k = list(pipeline.classes_).index(answer["explained_class"])
    assert answer["output_value"] == pytest.approx(pipeline.decision_function(values)[0, k], abs=1e-9)
    assert answer["base_value"] + sum(answer["contributions"].values()) == pytest.approx(answer["output_value"])

    text = runner.invoke(app, ["explain-prediction", "--row", json.dumps(ROW), "--version", "1"])
    assert text.exit_code == 0, text.output
    assert f"version 1 predicts {answer['explained_class']}; linear method, margin (logit) space" in text.output
    assert "petal_length_x_petal_width" in text.output

    bad = runner.invoke(app, ["explain-prediction", "--row", json.dumps({**ROW, "petal_width": "wide"})])
    assert bad.exit_code == 2
    assert "--row" in bad.output
