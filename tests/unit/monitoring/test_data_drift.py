"""Data drift (C32) on Evidently 0.7: the snapshot reader on hand-made dicts, then real reports on
generated batches (clean must pass, covariate shift must fire on exactly the moved features)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.params import MonitoringParams, Params
from monitoring import data_drift as dd
from monitoring.data_drift import data_drift, read_snapshot
from pipelines.batches import generate_batch


def monitoring(params: Params, **data_drift_knobs: Any) -> MonitoringParams:
    knobs = params.monitoring.data_drift.model_copy(update=data_drift_knobs)
    return params.monitoring.model_copy(update={"data_drift": knobs})


def snapshot_dict(columns: dict[str, tuple[str, float, float, str]], share: float, drift_share: float) -> dict:
    """A minimal DataDriftPreset snapshot: column -> (method, value, threshold, test status)."""
    metrics: list[dict[str, Any]] = [
        {
            "config": {"type": "evidently:metric_v2:DriftedColumnsCount", "drift_share": drift_share},
            "value": {"count": share * len(columns), "share": share},
        }
    ]
    tests = []
    for name, (method, value, threshold, status) in columns.items():
        config = {"type": "evidently:metric_v2:ValueDrift", "column": name, "method": method, "threshold": threshold}
        metrics.append({"config": config, "value": value})
        tests.append({"metric_config": {"params": config}, "status": status})
    return {"metrics": metrics, "tests": tests}


def test_read_snapshot_takes_each_column_verdict_from_its_test() -> None:
    # A p-value test drifts when small, a distance when large: the test status covers both directions.
    snap = snapshot_dict(
        {
            "a": ("K-S p_value", 0.001, 0.05, "FAIL"),
            "b": ("Wasserstein distance (normed)", 0.3, 0.1, "FAIL"),
            "c": ("K-S p_value", 0.6, 0.05, "SUCCESS"),
            "d": ("anderson", 0.25, 0.1, "SUCCESS"),  # a p-value test without "p_value" in its name
        },
        share=0.5,
        drift_share=0.5,
    )
    verdict = read_snapshot(snap)
    assert verdict.drifted_features == ["a", "b"]
    assert verdict.dataset_drift  # share 0.5 >= drift_share 0.5
    assert verdict.columns["b"] == dd.ColumnDrift("Wasserstein distance (normed)", 0.3, 0.1, True)
    assert not read_snapshot(snapshot_dict({"a": ("K-S p_value", 0.01, 0.05, "FAIL")}, 0.25, 0.5)).dataset_drift


def test_read_snapshot_rejects_other_snapshots_and_missing_tests() -> None:
    with pytest.raises(ValueError, match="DriftedColumnsCount"):
        read_snapshot({"metrics": [], "tests": []})
    no_tests = snapshot_dict({"a": ("K-S p_value", 0.01, 0.05, "FAIL")}, 1.0, 0.5) | {"tests": []}
    with pytest.raises(ValueError, match="include_tests=True"):
        read_snapshot(no_tests)


def test_small_window_is_inconclusive_without_running_evidently(
    params: Params, iris_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("Evidently ran on a window below min_rows")

    monkeypatch.setattr(dd, "run_report", must_not_run)
    small = iris_frame.head(params.monitoring.min_rows - 1)
    finding = data_drift(iris_frame, small, params.dataset.feature_names, params.monitoring)
    assert finding.status == "inconclusive"
    assert finding.score is None
    assert finding.rows == params.monitoring.min_rows - 1
    assert "min_rows" in finding.summary


def test_missing_or_non_numeric_feature_is_a_precise_error(params: Params, iris_frame: pd.DataFrame) -> None:
    features = params.dataset.feature_names
    with pytest.raises(ValueError, match=r"current data has no column\(s\) \['petal_width'\]"):
        data_drift(iris_frame, iris_frame.drop(columns="petal_width"), features, params.monitoring)
    text = iris_frame.assign(sepal_length="5,1")
    with pytest.raises(ValueError, match="non-numeric"):
        data_drift(iris_frame, text, features, params.monitoring)


@pytest.fixture(scope="module")
def batches(params: Params, iris_frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    rows = params.monitoring.window
    return {kind: generate_batch(kind, iris_frame, params, rows=rows, seed=3) for kind in ("clean", "covariate-shift")}


def test_clean_window_shows_no_drift(params: Params, iris_frame: pd.DataFrame, batches: dict) -> None:
    finding = data_drift(iris_frame, batches["clean"], params.dataset.feature_names, params.monitoring)
    assert finding.status == "ok"
    assert finding.check == "data_drift"
    assert finding.score == 0.0
    assert finding.details["drifted_features"] == []


def test_covariate_shift_fires_on_exactly_the_moved_features(
    params: Params, iris_frame: pd.DataFrame, batches: dict, tmp_path: Path
) -> None:
    features = params.dataset.feature_names
    finding = data_drift(iris_frame, batches["covariate-shift"], features, params.monitoring, out_dir=tmp_path)
    moved = params.batches.covariate_shift.features
    assert finding.status == "fired"
    assert finding.details["drifted_features"] == moved
    assert finding.score == len(moved) / len(features)
    assert finding.threshold == params.monitoring.data_drift.drift_share
    assert finding.rows == params.monitoring.window
    per_feature = finding.details["features"]
    assert set(per_feature) == set(features)
    assert per_feature["sepal_length"]["method"] == "K-S p_value"  # Evidently's default below 1,000 reference rows
    assert per_feature["sepal_length"]["score"] < per_feature["sepal_length"]["threshold"] == 0.05
    json.dumps(finding.to_dict())  # storable as is (no numpy bools)
    # The saved reports: an HTML page, and JSON the reader understands.
    assert Path(finding.reports["html"]) == tmp_path / "data-drift.html"
    assert "<html" in Path(finding.reports["html"]).read_text(encoding="utf-8")[:2000].lower()
    saved = json.loads(Path(finding.reports["json"]).read_text(encoding="utf-8"))
    assert read_snapshot(saved).drifted_features == moved


def test_params_choose_the_test_threshold_and_share(params: Params, iris_frame: pd.DataFrame, batches: dict) -> None:
    features, shifted = params.dataset.feature_names, batches["covariate-shift"]
    psi = data_drift(iris_frame, shifted, features, monitoring(params, method="psi", threshold=0.25))
    assert {f["method"] for f in psi.details["features"].values()} == {"psi"}  # as configured
    assert {f["threshold"] for f in psi.details["features"].values()} == {0.25}
    # Two of four features drifted: not enough when every feature must drift.
    strict = data_drift(iris_frame, shifted, features, monitoring(params, drift_share=1.0))
    assert strict.status == "ok"
    assert strict.details["drifted_features"] == params.batches.covariate_shift.features
    assert strict.threshold == 1.0
