"""Attribution drift: permutation-importance shares on the reference vs the window (scores measured, seeds fixed).

Measured with the logistic-regression pipeline on raw iris, 1000-row batches, seeds 0-5 (threshold 0.3):
clean 0.002-0.022 with either target; concept shift 0.44 with labels, 0.003-0.022 with predictions
(blind to it, by design); petal sensors stuck at one value 0.95 with predictions; a sepal covariate
shift 0.03-0.05 (the inputs moved, the model's reasons did not). A petal covariate shift scores
0.26-0.37 with labels and 0.08-0.10 with predictions: too close to the threshold for a stable test.
"""

from __future__ import annotations

import pandas as pd
import pytest

from core.findings import Finding
from core.params import AttributionDriftParams, Params
from monitoring.attribution_drift import attribution_change, check_attribution_drift
from pipelines.batches import generate_batch
from pipelines.fit import TrainResult, fit_and_evaluate

CFG = AttributionDriftParams(n_repeats=5, seed=0, max_rows=1000, threshold=0.3)


@pytest.fixture(scope="module")
def model(iris_frame: pd.DataFrame, params: Params) -> TrainResult:
    return fit_and_evaluate(iris_frame, params)


@pytest.fixture(scope="module")
def reference(iris_frame: pd.DataFrame, params: Params) -> pd.DataFrame:
    return generate_batch("clean", iris_frame, params, rows=1000, seed=100)


def check(model: TrainResult, reference: pd.DataFrame, window: pd.DataFrame, params: Params, labels: bool) -> Finding:
    target = params.dataset.target
    return check_attribution_drift(
        model.pipeline,
        reference,
        window,
        params.dataset.feature_names,
        CFG,
        reference_labels=reference[target] if labels else None,
        window_labels=window[target] if labels else None,
        min_rows=100,
    )


@pytest.mark.parametrize("labels", [True, False])
def test_a_clean_window_keeps_its_attributions(
    model: TrainResult, reference: pd.DataFrame, iris_frame: pd.DataFrame, params: Params, labels: bool
) -> None:
    finding = check(model, reference, generate_batch("clean", iris_frame, params, rows=1000, seed=1), params, labels)
    assert finding.status == "ok"
    assert finding.score is not None
    assert finding.score < 0.1
    assert finding.details["spearman"] == pytest.approx(1.0)
    shares = finding.details["reference"]["shares"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["petal_length"] + shares["petal_width"] > 0.8  # iris is decided by the petals


def test_stuck_petal_sensors_move_the_decisions_to_the_sepals(
    model: TrainResult, reference: pd.DataFrame, iris_frame: pd.DataFrame, params: Params
) -> None:
    window = generate_batch("clean", iris_frame, params, rows=1000, seed=2)
    window["petal_length"], window["petal_width"] = 4.9, 1.7  # stuck at a versicolor/virginica boundary value
    finding = check(model, reference, window, params, labels=False)
    assert finding.status == "fired"
    assert finding.score is not None
    assert finding.score > 0.9  # measured 0.95
    shares = finding.details["window"]["shares"]
    assert shares["petal_length"] == shares["petal_width"] == 0.0
    assert finding.details["spearman"] < 0
    assert "predictions as targets" in finding.summary


def test_labels_reveal_a_concept_shift_that_predictions_cannot(
    model: TrainResult, reference: pd.DataFrame, iris_frame: pd.DataFrame, params: Params
) -> None:
    window = generate_batch("concept-shift", iris_frame, params, rows=1000, seed=3)
    with_labels = check(model, reference, window, params, labels=True)
    without = check(model, reference, window, params, labels=False)
    assert with_labels.status == "fired"
    assert with_labels.score == pytest.approx(0.44, abs=0.03)
    # The same inputs as a clean batch, so the model's decisions depend on the same features as before.
    assert without.status == "ok"
    assert without.score is not None
    assert without.score < 0.05


def test_moved_inputs_need_not_move_the_attributions(
    model: TrainResult, reference: pd.DataFrame, iris_frame: pd.DataFrame, params: Params
) -> None:
    window = generate_batch("covariate-shift", iris_frame, params, rows=1000, seed=4)  # sepals moved by 1.5 sd
    finding = check(model, reference, window, params, labels=False)
    assert finding.status == "ok"
    assert finding.score is not None
    assert finding.score < 0.1


def test_sampling_is_bounded_and_seeded(
    model: TrainResult, reference: pd.DataFrame, iris_frame: pd.DataFrame, params: Params
) -> None:
    small = CFG.model_copy(update={"max_rows": 200})
    window = generate_batch("clean", iris_frame, params, rows=1000, seed=5)
    features = params.dataset.feature_names
    first = check_attribution_drift(model.pipeline, reference, window, features, small)
    again = check_attribution_drift(model.pipeline, reference, window, features, small)
    assert first.details["window"]["rows"] == first.details["reference"]["rows"] == 200
    assert first.score == again.score


def test_small_or_unattributable_windows_are_inconclusive(
    model: TrainResult, reference: pd.DataFrame, iris_frame: pd.DataFrame, params: Params
) -> None:
    features = params.dataset.feature_names
    tiny = generate_batch("clean", iris_frame, params, rows=50, seed=6)
    assert (
        check_attribution_drift(model.pipeline, reference, tiny, features, CFG, min_rows=100).status == "inconclusive"
    )
    setosa_only = iris_frame[iris_frame[params.dataset.target] == "setosa"]  # no single feature flips a decision
    finding = check_attribution_drift(model.pipeline, reference, setosa_only, features, CFG)
    assert finding.status == "inconclusive"
    assert "nothing to attribute" in finding.summary


def test_arguments_are_checked(model: TrainResult, reference: pd.DataFrame, params: Params) -> None:
    features = params.dataset.feature_names
    with pytest.raises(ValueError, match="both reference_labels and window_labels"):
        check_attribution_drift(model.pipeline, reference, reference, features, CFG, window_labels=reference["species"])
    with pytest.raises(ValueError, match="missing"):
        check_attribution_drift(model.pipeline, reference, reference.drop(columns="petal_width"), features, CFG)


def test_attribution_change_by_hand() -> None:
    # |0.5-0.1| + |0.3-0.2| + |0.2-0.7| = 1.0, halved = 0.5; ranks (3,2,1) vs (1,2,3): rho = -1
    score, rho = attribution_change({"a": 0.5, "b": 0.3, "c": 0.2}, {"a": 0.1, "b": 0.2, "c": 0.7})
    assert score == pytest.approx(0.5)
    assert rho == pytest.approx(-1.0)
    assert attribution_change({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}) == (0.0, None)  # constant: rho undefined
