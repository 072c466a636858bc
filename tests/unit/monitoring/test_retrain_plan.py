"""Retrain decisions and the retraining set, as pure functions."""

from __future__ import annotations

import pandas as pd
import pytest

from core.findings import Finding
from core.params import load_params
from monitoring.retrain_plan import decide, production_rows, training_set

PARAMS = load_params("params.yaml")
CFG = PARAMS.dataset
TRIGGERS = ["data_drift", "concept_drift"]


def _f(check: str, status: str) -> Finding:
    return Finding(check, status, 0.75 if status == "fired" else 0.0, 0.5, f"{check} is {status}")  # type: ignore[arg-type]


def test_a_fired_trigger_check_starts_a_retrain_and_names_it() -> None:
    d = decide({"data_drift": _f("data_drift", "fired"), "concept_drift": _f("concept_drift", "ok")}, TRIGGERS)
    assert d.retrain
    assert d.triggers == ["data_drift"]
    assert "data_drift is fired" in d.reason


def test_checks_that_are_not_triggers_or_inconclusive_never_start_a_retrain() -> None:
    findings = {"prediction_drift": _f("prediction_drift", "fired"), "data_drift": _f("data_drift", "inconclusive")}
    d = decide(findings, TRIGGERS)
    assert not d.retrain
    assert "inconclusive" in d.reason


def test_manual_and_schedule_requests_retrain_regardless() -> None:
    assert decide({}, TRIGGERS, "manual").triggers == ["manual"]
    assert decide({}, TRIGGERS, "schedule").retrain
    with pytest.raises(ValueError, match="requested"):
        decide({}, TRIGGERS, "because")


def test_production_rows_take_the_newest_labelled_rows_as_training_rows() -> None:
    ts = pd.to_datetime(["2026-01-01T00:00:03", "2026-01-01T00:00:01", "2026-01-01T00:00:02"], utc=True)
    labelled = pd.DataFrame(
        {
            "ts": ts,
            **{f: [5.0 + i for i in range(3)] for f in CFG.feature_names},
            "label": ["setosa", "versicolor", "virginica"],
            "prediction": ["setosa"] * 3,
        }
    )
    rows = production_rows(labelled, CFG, limit=2)
    assert list(rows.columns) == CFG.required_columns
    assert rows[CFG.target].tolist() == ["virginica", "setosa"]  # the two newest, oldest first


def test_training_set_appends_production_rows_and_drops_exact_duplicates() -> None:
    reference = pd.DataFrame({**{f: [1.0, 2.0] for f in CFG.feature_names}, CFG.target: ["setosa", "virginica"]})
    production = pd.DataFrame({**{f: [2.0, 3.0] for f in CFG.feature_names}, CFG.target: ["virginica", "versicolor"]})
    combined = training_set(reference, production, CFG)
    assert len(combined) == 3
    assert combined[CFG.target].tolist() == ["setosa", "virginica", "versicolor"]


def test_repeated_production_rows_become_one_training_row() -> None:
    ts = pd.to_datetime(["2026-01-01T00:00:01", "2026-01-01T00:00:02", "2026-01-01T00:00:03"], utc=True)
    labelled = pd.DataFrame(
        {"ts": ts, **{f: [5.0, 5.0, 6.0] for f in CFG.feature_names}, "label": ["setosa", "setosa", "virginica"]}
    )
    rows = production_rows(labelled, CFG, limit=10)
    assert len(rows) == 2
    assert not rows.duplicated().any()
