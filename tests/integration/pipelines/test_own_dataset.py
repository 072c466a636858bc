"""Your own dataset from the docs alone (issue 20): wine with NaNs, profiled, refused, cleaned, trained, served
and checked for drift, on real parts (MLflow in a temp state, the serving app, the prediction log).

The steps are those of docs/own-dataset.md: `dataset init` on the raw CSV, `dataset use`, `validate` refuses
the missing values and names their file lines, the file is cleaned and profiled again, `train` registers a
champion under the dataset's own model name, /v1/predict answers with wine's columns, and the monitoring
checks read the served window against the champion's training data.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from core.context import LabContext, load_context
from core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]


def test_wine_with_nans_is_refused_then_cleaned_trained_served_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_settings
) -> None:
    from core.findings import save_findings
    from lab.demos.traffic import running_service, users
    from lab.labs import run_check, run_setup
    from lab.labs.lab09_own_dataset import brought_csv
    from monitoring.checks import run_checks
    from monitoring.window import load_inputs
    from pipelines.registry import current_aliases
    from pipelines.training_steps import run_training
    from pipelines.validation import validate_file
    from serving.prediction_log import make_engine

    saved = dict(os.environ)
    state = tmp_path / "state"
    make_settings(state)  # a real, empty MLflow store in this state folder
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(REPO))
    monkeypatch.setenv("MLOPS_STATE_DIR", str(state))
    for key in ("MLOPS_PARAMS_FILE", "MLOPS_MODEL_NAME"):
        monkeypatch.delenv(key, raising=False)
    try:
        start = load_context()
        run_setup(9, start)  # lab 9 writes the CSV to bring, and counts only what happens after this
        raw = brought_csv(start.settings)
        assert CliRunner().invoke(app, ["dataset", "init", str(raw), "--target", "cultivar"]).exit_code == 0
        params_file = state / "datasets" / "wine.yaml"
        assert CliRunner().invoke(app, ["dataset", "use", str(params_file)]).exit_code == 0

        ctx = load_context()  # what every command now reads: the wine params, the wine model name
        assert ctx.settings.model_name == "wine-classifier"
        said = CliRunner().invoke(app, ["validate", str(raw)])
        assert said.exit_code == 1
        refused = validate_file(raw, ctx.params.dataset)
        nulls = [f for f in refused.failures if f.expectation == "expect_column_values_to_not_be_null"]
        assert sorted(f.column for f in nulls) == ["alcohol", "ash", "malic_acid"]
        assert all("file lines" in f.detail for f in nulls)

        clean = raw.with_name("wine-clean.csv")
        pd.read_csv(raw).dropna().to_csv(clean, index=False)  # the docs' one-line clean-up
        again = CliRunner().invoke(app, ["dataset", "init", str(clean), "--target", "cultivar", "--name", "wine"])
        assert again.exit_code == 0, again.output
        ctx = load_context(Settings(access_log=False, startup_model_wait_s=120.0))
        assert ctx.params.dataset.path == str(clean)
        assert CliRunner().invoke(app, ["validate", str(clean)]).exit_code == 0

        outcome = run_training(ctx.settings, ctx.params)
        assert outcome.status == "registered", outcome.gate["reasons"]
        assert current_aliases(ctx.settings) == {"champion": outcome.version}

        with running_service(LabContext(ctx.settings, ctx.params)) as service:
            row = pd.read_csv(clean).drop(columns="cultivar").iloc[0].to_dict()
            answer = service.client.post("/v1/predict", json=row)
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"][0]["class"] in {"cultivar_0", "cultivar_1", "cultivar_2"}
            traffic = service.send(users("w", 120), seed=3)
            assert traffic.failed == 0
            service.flush()

        inputs = load_inputs(ctx.settings, ctx.params)
        findings = {f.check: f for f in run_checks(inputs, ctx.params, tmp_path / "reports")}
        drift = findings["data_drift"]
        assert drift.status in {"ok", "drift"}, drift.summary  # it ran on wine's columns and answered
        assert not drift.summary.startswith("check failed"), drift.summary
        engine = make_engine(ctx.settings.prediction_log_uri)
        try:
            save_findings(engine, list(findings.values()))  # as the monitoring flow records them
        finally:
            engine.dispose()

        checks = run_check(9, ctx)  # the lab's checker agrees, condition by condition
        assert [c.name for c in checks if not c.passed] == [], [(c.name, c.detail) for c in checks]
        assert "null values refused in alcohol, ash, malic_acid" in [c.detail for c in checks]
    finally:
        os.environ.clear()
        os.environ.update(saved)
