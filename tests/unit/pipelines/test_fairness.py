"""Fairness metrics by name, the gate's fairness check, the biased-group generator and the mitigation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from core.params import FairnessGateParams, Params
from pipelines.fair_groups import SHIFTED, SITES, biased_rows
from pipelines.fairness import fairness_check, fairness_report, mitigate_with_thresholds
from pipelines.fit import fit_and_evaluate

CLASSES = ["setosa", "versicolor", "virginica"]
# Group a: 4 virginica, all found; 6 others, one wrongly called virginica.
# Group b: 4 virginica, 2 found (the other 2 called versicolor); 6 others, none called virginica.
TRUTH = (
    ["virginica"] * 4 + ["setosa"] * 3 + ["versicolor"] * 3 + ["virginica"] * 4 + ["setosa"] * 3 + ["versicolor"] * 3
)
PRED = (
    ["virginica"] * 4
    + ["setosa"] * 3
    + ["virginica", "versicolor", "versicolor"]
    + ["virginica"] * 2
    + ["versicolor"] * 2
    + ["setosa"] * 3
    + ["versicolor"] * 3
)
GROUPS = ["a"] * 10 + ["b"] * 10


def test_metrics_by_name_match_their_definitions() -> None:
    report = fairness_report(TRUTH, PRED, GROUPS, "virginica", "source")
    by_group = {g.group: g for g in report.groups}
    a, b = by_group["a"], by_group["b"]
    assert (a.n, a.positives, b.n, b.positives) == (10, 4, 10, 4)
    assert (a.selection_rate, b.selection_rate) == (pytest.approx(5 / 10), pytest.approx(2 / 10))
    assert (a.true_positive_rate, b.true_positive_rate) == (pytest.approx(1.0), pytest.approx(0.5))
    assert (a.false_positive_rate, b.false_positive_rate) == (pytest.approx(1 / 6), pytest.approx(0.0))
    assert (a.accuracy, b.accuracy) == (pytest.approx(0.9), pytest.approx(0.8))
    assert report.demographic_parity_difference == pytest.approx(0.5 - 0.2)
    assert report.equalized_odds_difference == pytest.approx(max(1.0 - 0.5, 1 / 6 - 0.0))
    assert report.disparate_impact_ratio == pytest.approx(0.2 / 0.5)
    assert not report.four_fifths_met
    assert report.accuracy == pytest.approx(17 / 20)


def test_positive_is_one_vs_rest_per_class() -> None:
    report = fairness_report(TRUTH, PRED, GROUPS, "virginica", "source")
    # setosa is always right in both groups: no gap; versicolor: a predicts it 2/10, b 5/10.
    assert report.per_class["setosa"] == {"demographic_parity_difference": 0.0, "equalized_odds_difference": 0.0}
    assert report.per_class["versicolor"]["demographic_parity_difference"] == pytest.approx(0.3)
    assert report.per_class["virginica"]["equalized_odds_difference"] == report.equalized_odds_difference
    as_setosa = fairness_report(TRUTH, PRED, GROUPS, "setosa", "source")
    assert as_setosa.equalized_odds_difference == 0.0  # the chosen class decides the headline figures


def test_small_groups_are_left_out_and_said() -> None:
    groups = ["a"] * 10 + ["b"] * 7 + ["c"] * 3
    report = fairness_report(TRUTH, PRED, groups, "virginica", "source", min_group_size=5)
    assert [g.group for g in report.groups] == ["a", "b"]
    assert report.left_out == {"c": 3}
    with pytest.raises(ValueError, match="two groups"):
        fairness_report(TRUTH, PRED, groups, "virginica", "source", min_group_size=8)


def test_a_group_without_positives_has_no_recall_to_compare_and_is_left_out() -> None:
    """fairlearn counts the recall of a group with no virginica as 0: that would be a gap of 1.0 made of nothing."""
    truth = [*TRUTH, *(["setosa"] * 10)]
    pred = [*PRED, *(["setosa"] * 10)]
    report = fairness_report(truth, pred, [*GROUPS, *(["c"] * 10)], "virginica", "source", min_group_size=5)
    assert report.left_out == {"c": 10}
    assert report.equalized_odds_difference == pytest.approx(0.5)  # a against b only
    check, _ = fairness_check(
        truth, pred, [*GROUPS, *(["c"] * 10)], FairnessGateParams(max_equalized_odds_difference=0.6), CLASSES, "s"
    )
    assert check.passed


def test_check_refuses_over_the_bound_and_passes_at_it() -> None:
    over = FairnessGateParams(positive_class="virginica", max_equalized_odds_difference=0.49, min_group_size=5)
    check, report = fairness_check(TRUTH, PRED, GROUPS, over, CLASSES, "source")
    assert not check.passed
    assert report is not None
    assert "equalized-odds difference 0.500" in check.detail
    assert "exceeds" in check.detail
    at = over.model_copy(update={"max_equalized_odds_difference": 0.5})
    assert fairness_check(TRUTH, PRED, GROUPS, at, CLASSES, "source")[0].passed


def test_check_without_groups_passes_and_says_nothing_was_judged() -> None:
    params = FairnessGateParams(max_equalized_odds_difference=0.01)
    check, report = fairness_check(TRUTH, PRED, None, params, CLASSES, "source")
    assert check.passed
    assert report is None
    assert "nothing to judge" in check.detail
    tiny, _ = fairness_check(TRUTH, PRED, GROUPS, params.model_copy(update={"min_group_size": 11}), CLASSES, "source")
    assert tiny.passed
    assert "not judged" in tiny.detail
    off, _ = fairness_check(TRUTH, PRED, GROUPS, params.model_copy(update={"enabled": False}), CLASSES, "source")
    assert off.passed
    assert "disabled" in off.detail


def test_default_positive_class_is_the_last_class() -> None:
    _check, report = fairness_check(TRUTH, PRED, GROUPS, FairnessGateParams(min_group_size=5), CLASSES, "source")
    assert report is not None
    assert report.positive_class == "virginica"


def test_biased_rows_shift_only_site_b_petals_by_the_stated_size(params: Params, iris_frame: pd.DataFrame) -> None:
    keep_all = params.model_copy(update={"dataset": params.dataset.model_copy(update={"unique_rows": False})})
    fair = biased_rows(iris_frame, keep_all, rows=300, seed=4, shift_cm=0.0)
    biased = biased_rows(iris_frame, keep_all, rows=300, seed=4, shift_cm=0.4)
    group = params.dataset.group_column
    assert set(biased[group]) == set(SITES)
    assert biased.equals(biased_rows(iris_frame, keep_all, rows=300, seed=4, shift_cm=0.4))  # seeded
    site_b = biased[group] == SITES[1]
    for feature in SHIFTED:
        low = params.dataset.features[feature].min
        expected = (fair.loc[site_b, feature] - 0.4).clip(lower=low)
        assert np.allclose(biased.loc[site_b, feature], expected, atol=0.051)  # rounded to one decimal
        assert biased.loc[~site_b, feature].equals(fair.loc[~site_b, feature])
    others = [c for c in biased.columns if c not in SHIFTED]
    assert biased[others].equals(fair[others])


def test_biased_rows_keep_the_data_contract(params: Params, iris_frame: pd.DataFrame) -> None:
    """A large shift pushes petals to the floor: values stay valid after rounding and duplicates are dropped."""
    rows = biased_rows(iris_frame, params, rows=400, seed=11, shift_cm=0.8)
    assert not rows.duplicated().any()
    assert 300 < len(rows) <= 400
    for feature in SHIFTED:
        spec = params.dataset.features[feature]
        assert rows[feature].between(spec.min, spec.max).all()


def test_threshold_mitigation_closes_the_gap_of_a_biased_model(params: Params, iris_frame: pd.DataFrame) -> None:
    """Site B's petals read 0.4 cm short: the model misses B's virginica; per-group thresholds restore it."""
    features, target, group = params.dataset.feature_names, params.dataset.target, params.dataset.group_column
    train = biased_rows(iris_frame, params, rows=400, seed=1)
    calibrate = biased_rows(iris_frame, params, rows=400, seed=2)
    test = biased_rows(iris_frame, params, rows=1000, seed=3)
    model = fit_and_evaluate(train, params).pipeline
    before = fairness_report(test[target], model.predict(test[features]), test[group], "virginica", group)
    mitigation = mitigate_with_thresholds(
        model, calibrate[features], calibrate[target], calibrate[group], "virginica", CLASSES, seed=0
    )
    predicted = mitigation.predict(test[features], test[group])
    after = fairness_report(test[target], predicted, test[group], "virginica", group)
    b_before = next(g for g in before.groups if g.group == SITES[1])
    assert before.equalized_odds_difference > 0.12
    assert b_before.true_positive_rate < 0.9
    assert after.equalized_odds_difference < before.equalized_odds_difference / 2
    # Only the virginica decision moves: a row keeps the model's class unless it enters or leaves virginica.
    untouched = (predicted != "virginica") & (model.predict(test[features]) != "virginica")
    assert (predicted[untouched] == model.predict(test[features])[untouched]).all()


def test_the_what_if_mitigation_is_fitted_out_of_fold_and_closes_the_gap_on_the_test_rows(params) -> None:
    from pipelines.data import build_raw_frame
    from pipelines.fairness_what_if import mitigation_what_if

    reference = build_raw_frame(params.dataset, params.ingest)
    result = fit_and_evaluate(biased_rows(reference, params, rows=400, seed=12), params)
    what_if = mitigation_what_if(result.pipeline, result.split, params)
    assert what_if is not None
    gate = fairness_report(
        result.split.y_test, result.evaluation.predictions, result.split.groups_test, "virginica", "source",
        params.gate.fairness.min_group_size,
    )  # fmt: skip
    assert what_if["before"]["equalized_odds_difference"] == round(gate.equalized_odds_difference, 4)
    assert what_if["after"]["equalized_odds_difference"] < 0.5 * what_if["before"]["equalized_odds_difference"]
    assert what_if["served"] is False
    unfair_test_only = replace(result.split, groups_train=None)
    assert mitigation_what_if(result.pipeline, unfair_test_only, params) is None  # no groups to fit on
    one_group = replace(result.split, groups_train=result.split.groups_train.map(lambda _: "site-a"))
    assert "error" in mitigation_what_if(result.pipeline, one_group, params)  # reported, never raised
