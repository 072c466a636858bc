"""Explanation drift: mean |contribution| shares of served rows against the reference, reported in the
attribution finding (logistic regression on raw iris, 1000-row generated windows, at most 100 rows a side).

Measured, seeds 51 and 52: clean 0.007-0.009; covariate shift 0.040-0.044; prior shift 0.046-0.047; petal
sensors stuck at the training mean (an upstream default) 0.36-0.38, top input petal_width -> sepal_width.
Stuck at a value far from the mean (4.9 cm, 1.7 cm) scores only 0.08: the petals still move every answer
the same long way from the base value, so their mean |contribution| stays; permutation importance, which
asks what a feature's *variation* is worth, is the check that sees that one (test_attribution_drift.py).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.findings import Finding
from core.params import Params
from monitoring.checks import CHECKS, _permutation_attribution
from monitoring.explanation_drift import explanation_shift, with_explanations
from monitoring.reference import Reference
from monitoring.window import CheckInputs
from pipelines.batches import generate_batch
from pipelines.fit import TrainResult, fit_and_evaluate


@pytest.fixture(scope="module")
def model(iris_frame: pd.DataFrame, params: Params) -> TrainResult:
    return fit_and_evaluate(iris_frame, params)


def stuck_petals(iris_frame: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Petal sensors stuck at the training mean: the petals no longer push any answer anywhere."""
    window = generate_batch("clean", iris_frame, params, rows=1000, seed=52)
    window["petal_length"], window["petal_width"] = iris_frame["petal_length"].mean(), iris_frame["petal_width"].mean()
    return window


def test_a_clean_window_explains_like_the_reference_and_stuck_petals_do_not(
    model: TrainResult, iris_frame: pd.DataFrame, params: Params
) -> None:
    features = params.dataset.feature_names
    clean = explanation_shift(
        model.pipeline, iris_frame, generate_batch("clean", iris_frame, params, rows=1000, seed=51), features, 0
    )
    stuck = explanation_shift(model.pipeline, iris_frame, stuck_petals(iris_frame, params), features, 0)
    assert (clean["reference_rows"], clean["window_rows"]) == (100, 100)  # sampled: the cost is bounded
    assert sum(clean["window"].values()) == pytest.approx(1.0)
    assert clean["shift"] < 0.05
    assert stuck["shift"] > 0.3
    assert clean["top_window"] == clean["top_reference"] == "petal_width"
    assert stuck["top_window"] == "sepal_width"
    assert stuck["window"]["petal_width"] < stuck["reference"]["petal_width"] / 2


def test_the_attribution_check_reports_the_explanation_shift_without_changing_its_verdict(
    model: TrainResult, iris_frame: pd.DataFrame, params: Params, tmp_path: Path
) -> None:
    window = stuck_petals(iris_frame, params)
    reference = Reference(iris_frame, tmp_path / "iris.csv", "1", "test reference")
    inputs = CheckInputs(reference=reference, window=window, labelled=pd.DataFrame(), model=model.pipeline)
    finding = CHECKS["attribution_drift"](inputs, params, tmp_path)
    shift = finding.details["explanations"]
    assert shift["shift"] > 0.3
    assert f"explanation shift {shift['shift']:.2f}" in finding.summary
    alone = _permutation_attribution(inputs, params)  # the permutation-importance verdict, unchanged
    assert (finding.status, finding.score) == (alone.status, alone.score)
    assert finding.summary.startswith(alone.summary)


def test_an_inconclusive_attribution_finding_gets_no_explanation(model: TrainResult, iris_frame, params) -> None:
    empty = Finding("attribution_drift", "inconclusive", None, 0.3, "0 window rows", rows=0)
    assert (
        with_explanations(empty, model.pipeline, iris_frame, iris_frame.iloc[:0], params.dataset.feature_names, 0)
        == empty
    )
