"""Prediction drift (C33): the two tests on hand-made arrays, the zero-count guard, the verdict, and
reading classes and confidences back from a real prediction log."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.params import MonitoringParams, Params
from monitoring.prediction_drift import (
    class_shift,
    class_shift_test,
    confidence_shift_test,
    from_probabilities,
    prediction_drift,
    predictions_from_log,
    reference_predictions,
)

CLASSES = ["setosa", "versicolor", "virginica"]


def labels(counts: dict[str, int], seed: int = 0) -> list[str]:
    out = [c for c, n in counts.items() for _ in range(n)]
    return list(np.random.default_rng(seed).permutation(out))


def confidences(n: int, low: float, high: float, seed: int) -> list[float]:
    return np.random.default_rng(seed).uniform(low, high, n).tolist()


@pytest.fixture
def mon(params: Params) -> MonitoringParams:
    return params.monitoring


def test_class_shift_shows_expected_counts_statistic_and_dof_computed_by_hand() -> None:
    from scipy.stats import chi2

    shift = class_shift(["a"] * 10 + ["b"] * 20, ["b"] * 40 + ["a"] * 30)
    # row totals 30 and 70, column totals 40 and 60, grand total 100: expected = row x column / 100
    assert shift.classes == ("a", "b")
    assert shift.observed == ((10, 20), (30, 40))
    assert shift.expected == ((12.0, 18.0), (28.0, 42.0))
    by_hand = 4 / 12 + 4 / 18 + 4 / 28 + 4 / 42  # sum of (observed - expected)^2 / expected, no correction
    assert shift.statistic == pytest.approx(by_hand)
    assert shift.dof == 1
    assert shift.p_value == pytest.approx(chi2.sf(by_hand, 1))
    assert class_shift_test(["a"] * 10 + ["b"] * 20, ["b"] * 40 + ["a"] * 30) == (
        shift.p_value,
        {"a": [10, 30], "b": [20, 40]},
    )


def test_class_shares_same_mix_passes_and_a_new_mix_rejects() -> None:
    reference = labels({"setosa": 50, "versicolor": 50, "virginica": 50})
    p_same, counts = class_shift_test(reference, labels({"setosa": 170, "versicolor": 165, "virginica": 165}))
    assert p_same > 0.5
    assert counts["setosa"] == [50, 170]
    p_moved, _ = class_shift_test(reference, labels({"setosa": 350, "versicolor": 100, "virginica": 50}))
    assert p_moved < 1e-6


def test_zero_counts_are_guarded() -> None:
    reference = labels({"setosa": 75, "versicolor": 75})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by a zero expected count, no RuntimeWarning
        p_new_class, counts = class_shift_test(reference, labels({"setosa": 200, "versicolor": 200, "virginica": 100}))
    assert np.isfinite(p_new_class)
    assert p_new_class < 1e-6  # a class the model never predicted on the reference is a strong signal
    assert counts["virginica"] == [0, 100]
    assert class_shift_test(["setosa"] * 10, ["setosa"] * 300) == (1.0, {"setosa": [10, 300]})


def test_confidence_test_sees_a_drop_and_ignores_missing_values() -> None:
    reference = confidences(150, 0.8, 1.0, seed=1)
    assert confidence_shift_test(reference, confidences(500, 0.8, 1.0, seed=2)) > 0.01
    assert confidence_shift_test(reference, confidences(500, 0.5, 0.9, seed=2)) < 1e-6
    with_gaps = [*confidences(500, 0.8, 1.0, seed=2), float("nan")]
    assert np.isfinite(confidence_shift_test(reference, with_gaps))


def test_small_window_is_inconclusive(mon: MonitoringParams) -> None:
    n = mon.min_rows - 1
    finding = prediction_drift(["setosa"] * 150, [0.9] * 150, ["virginica"] * n, [0.4] * n, mon)
    assert finding.status == "inconclusive"
    assert finding.check == "prediction_drift"
    assert finding.score is None


def test_same_predictions_pass_and_either_test_can_fire(mon: MonitoringParams) -> None:
    ref_classes, ref_conf = labels({c: 50 for c in CLASSES}), confidences(150, 0.7, 1.0, seed=1)
    same = prediction_drift(
        ref_classes, ref_conf, labels({c: 166 for c in CLASSES}), confidences(498, 0.7, 1.0, 2), mon
    )
    assert same.status == "ok"
    assert same.threshold == mon.prediction_drift.p_value
    assert same.score == min(same.details["class_p_value"], same.details["confidence_p_value"])
    assert same.score >= mon.prediction_drift.p_value

    prior = labels({"setosa": 350, "versicolor": 100, "virginica": 50})
    shares = prediction_drift(ref_classes, ref_conf, prior, confidences(500, 0.7, 1.0, 2), mon)
    assert shares.status == "fired"
    assert shares.details["drifted"] == ["class shares"]
    assert shares.details["current_shares"]["setosa"] == 0.7

    unsure = prediction_drift(
        ref_classes, ref_conf, labels({c: 166 for c in CLASSES}), confidences(498, 0.4, 0.8, 2), mon
    )
    assert unsure.status == "fired"
    assert unsure.details["drifted"] == ["confidence"]
    assert unsure.details["current_mean_confidence"] < unsure.details["reference_mean_confidence"]


def test_confidence_is_skipped_not_failed_without_probabilities(mon: MonitoringParams) -> None:
    n = 300
    finding = prediction_drift(
        labels({c: 50 for c in CLASSES}), [0.9] * 150, labels({c: 100 for c in CLASSES}), [float("nan")] * n, mon
    )
    assert finding.status == "ok"
    assert finding.details["confidence_p_value"] is None
    assert "skipped" in finding.summary


def test_reference_predictions_from_a_fitted_pipeline(params: Params, iris_frame: pd.DataFrame) -> None:
    from pipelines.data import split_features_target
    from pipelines.features import build_pipeline

    X, y = split_features_target(iris_frame, params.dataset)
    model = build_pipeline(params.features, params.train).fit(X, y)
    classes, conf = reference_predictions(model, iris_frame, params.dataset.feature_names)
    assert len(classes) == len(conf) == len(iris_frame)
    assert set(classes) == set(CLASSES)
    assert np.allclose(conf, model.predict_proba(X).max(axis=1))
    with pytest.raises(TypeError, match="predict_proba"):
        reference_predictions(object(), iris_frame, params.dataset.feature_names)


def test_from_probabilities_checks_the_shape() -> None:
    assert from_probabilities(np.array([[0.1, 0.9], [0.6, 0.4]]), ["a", "b"]) == (["b", "a"], [0.9, 0.6])
    with pytest.raises(ValueError, match="rows x 3 classes"):
        from_probabilities(np.array([[0.1, 0.9]]), CLASSES)


def test_predictions_from_a_real_log_skip_failures_and_keep_label_only_rows(tmp_path: Path) -> None:
    from serving.log_reader import recent_predictions
    from serving.prediction_log import PredictionLog, PredictionRecord

    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    log = PredictionLog(url).start()
    rows = [
        ("versicolor", {"setosa": 0.1, "versicolor": 0.7, "virginica": 0.2}, "ok"),
        ("setosa", None, "ok"),  # answered with labels only: no confidence
        (None, None, "error"),  # a failed request is not a prediction
    ]
    for i, (label, proba, status) in enumerate(rows):
        log.record(PredictionRecord(f"r{i}", "iris", "1", {"sepal_length": 5.0}, label, proba, status=status))
    log.close()
    classes, conf = predictions_from_log(recent_predictions(url))
    assert classes == ["versicolor", "setosa"]
    assert conf[0] == 0.7
    assert np.isnan(conf[1])
    assert predictions_from_log(recent_predictions(url).iloc[0:0]) == ([], [])
    with pytest.raises(ValueError, match="probabilities"):
        predictions_from_log(pd.DataFrame({"prediction": ["setosa"]}))
