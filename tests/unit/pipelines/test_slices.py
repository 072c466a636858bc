"""Slice metrics and the parity check: numbers per slice, gaps per family, tiny slices ignored."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.params import Params, SliceParityParams
from pipelines.data import split_features_target
from pipelines.slices import SliceMetric, parity_check, slice_metrics

# 10 "a" rows all right; 10 "b" rows, 5 right: recall a=1.0, b=0.5.
Y_TRUE = ["a"] * 10 + ["b"] * 10
Y_PRED = ["a"] * 10 + ["b"] * 5 + ["a"] * 5


def _by_slice(slices: list[SliceMetric]) -> dict[tuple[str, str], SliceMetric]:
    return {(s.family, s.slice): s for s in slices}


def test_class_slices_report_recall_and_support() -> None:
    slices = _by_slice(slice_metrics(pd.Series(Y_TRUE), pd.Series(Y_PRED), None))
    assert slices["class", "a"] == SliceMetric("class", "a", "recall", 1.0, 10)
    assert slices["class", "b"] == SliceMetric("class", "b", "recall", 0.5, 10)


def test_group_slices_report_accuracy_per_value() -> None:
    source = pd.Series(["lab1"] * 15 + ["lab2"] * 5, index=range(100, 120))  # index differs: aligned by position
    slices = _by_slice(slice_metrics(Y_TRUE, Y_PRED, {"source": source}))
    assert slices["source", "lab1"] == SliceMetric("source", "lab1", "accuracy", 1.0, 15)
    assert slices["source", "lab2"] == SliceMetric("source", "lab2", "accuracy", 0.0, 5)


def test_misaligned_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="row-aligned"):
        slice_metrics(Y_TRUE, Y_PRED[:-1])
    with pytest.raises(ValueError, match="group 'source'"):
        slice_metrics(Y_TRUE, Y_PRED, {"source": pd.Series(["x"] * 3)})


def test_parity_flags_a_large_recall_gap() -> None:
    result = parity_check(slice_metrics(Y_TRUE, Y_PRED), SliceParityParams(max_recall_gap=0.25, min_slice_size=5))
    assert not result.passed
    assert result.name == "slice_parity"
    assert "gap 0.500" in result.detail
    assert "max 0.250" in result.detail


def test_parity_gap_exactly_at_the_limit_passes() -> None:
    y_pred = ["a"] * 10 + ["b"] * 7 + ["a"] * 3  # recall b = 0.7; 1.0 - 0.7 is 0.30000000000000004 in floats
    assert parity_check(slice_metrics(Y_TRUE, y_pred), SliceParityParams(max_recall_gap=0.3)).passed
    assert not parity_check(slice_metrics(Y_TRUE, y_pred), SliceParityParams(max_recall_gap=0.299)).passed


def test_parity_ignores_tiny_slices_but_reports_them() -> None:
    y_true, y_pred = ["a"] * 20, ["a"] * 18 + ["b"] * 2
    source = pd.Series(["big1"] * 9 + ["big2"] * 9 + ["tiny"] * 2)  # "tiny" is all wrong, n=2
    slices = slice_metrics(y_true, y_pred, {"source": source})
    result = parity_check(slices, SliceParityParams(max_recall_gap=0.25, min_slice_size=5))
    assert result.passed, result.detail
    tiny = next(c for c in result.cases if c["slice"] == "tiny")
    assert tiny == {"family": "source", "slice": "tiny", "metric": "accuracy", "value": 0.0, "n": 2, "counted": False}
    assert "1 slice(s) under n=5 ignored" in result.detail
    assert not parity_check(slices, SliceParityParams(max_recall_gap=0.25, min_slice_size=2)).passed


def test_family_with_one_countable_slice_has_no_gap() -> None:
    result = parity_check([SliceMetric("class", "a", "recall", 0.1, 50)], SliceParityParams())
    assert result.passed
    assert "no gap" in result.detail


def test_sound_model_has_class_parity_on_iris(iris_frame: pd.DataFrame, params: Params) -> None:
    X, y = split_features_target(iris_frame, params.dataset)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)
    slices = slice_metrics(y_test, model.predict(X_test))
    assert {s.slice for s in slices} == set(params.dataset.classes)
    assert sum(s.n for s in slices) == len(y_test)
    assert parity_check(slices, params.gate.slice_parity).passed


def test_group_parity_compares_accuracy_so_an_equal_opportunity_gap_passes_unseen() -> None:
    """What the check does not compute: per-group true-positive rates (equal opportunity) or selection rates."""
    # Group x: 2 of 5 positives missed (TPR 0.6). Group y: 2 of 5 negatives called positive (TPR 1.0).
    y_true = (["pos"] * 5 + ["neg"] * 5) * 2
    y_pred = ["pos"] * 3 + ["neg"] * 2 + ["neg"] * 5 + ["pos"] * 5 + ["neg"] * 3 + ["pos"] * 2
    group = pd.Series(["x"] * 10 + ["y"] * 10)
    slices = _by_slice(slice_metrics(y_true, y_pred, {"group": group}))
    assert (slices["group", "x"].metric, slices["group", "x"].value) == ("accuracy", 0.8)
    assert slices["group", "y"].value == 0.8  # same accuracy, so no gap...
    assert (slices["class", "pos"].value, slices["class", "neg"].value) == (0.8, 0.8)  # ...and class recalls agree
    result = parity_check(list(slices.values()), SliceParityParams(max_recall_gap=0.1, min_slice_size=5))
    assert result.passed  # although the positive rate among true positives is 0.6 in x and 1.0 in y
