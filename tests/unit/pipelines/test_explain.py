"""Explanations add up to the model's output, and agree with the shap package on the same rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.params import Params
from pipelines.explain import KERNEL, LINEAR, MARGIN, PROBABILITY, TREE, Explainer
from pipelines.fit import TrainResult, fit_and_evaluate

HYPERPARAMS = {
    "logistic_regression": {"C": 1.0, "max_iter": 1000},
    "random_forest": {"n_estimators": 30},
    "svc": {},
    "knn": {"n_neighbors": 7},
}


def fitted(iris_frame: pd.DataFrame, params: Params, estimator: str) -> TrainResult:
    train = params.train.model_copy(update={"estimator": estimator, "hyperparams": HYPERPARAMS[estimator]})
    return fit_and_evaluate(iris_frame, params.model_copy(update={"train": train}))


@pytest.fixture(scope="module", params=list(HYPERPARAMS))
def case(request: pytest.FixtureRequest, iris_frame: pd.DataFrame, params: Params) -> tuple[TrainResult, Explainer]:
    result = fitted(iris_frame, params, request.param)
    features = params.dataset.feature_names
    return result, Explainer(result.pipeline, result.split.X_train[features].to_numpy(), seed=params.train.seed)


def rows(result: TrainResult, params: Params) -> np.ndarray:
    return result.split.X_test[params.dataset.feature_names].to_numpy()


def test_base_plus_contributions_is_the_model_output_for_every_row_and_class(case, params: Params) -> None:
    result, explainer = case
    X = rows(result, params)  # the 45 test rows
    base, contributions = explainer.attributions(X)
    outputs = explainer.outputs(X)
    assert contributions.shape == (len(X), len(explainer.features), len(explainer.classes))
    np.testing.assert_allclose(base[None, :] + contributions.sum(axis=1), outputs, atol=1e-9)
    if explainer.method == LINEAR:  # the margin: logistic regression's own decision_function
        assert explainer.output == MARGIN
        np.testing.assert_allclose(outputs, result.pipeline.decision_function(X), atol=1e-12)
    else:
        assert explainer.output == PROBABILITY
        np.testing.assert_allclose(outputs, result.pipeline.predict_proba(X), atol=1e-12)


def test_each_explanation_explains_the_predicted_class_and_both_views_add_up(case, params: Params) -> None:
    result, explainer = case
    X = rows(result, params)
    predicted = result.pipeline.predict(X)
    for row, label, answer in zip(X, predicted, explainer.explain(X), strict=True):
        assert answer.explained_class == label
        assert sum(answer.contributions.values()) + answer.base_value == pytest.approx(answer.output_value, abs=1e-9)
        assert sum(answer.by_input.values()) + answer.base_value == pytest.approx(answer.output_value, abs=1e-9)
        assert list(answer.by_input) == params.dataset.feature_names
        c = answer.contributions  # derived features are split equally between their two inputs
        expected = c["petal_length"] + c["petal_length_x_petal_width"] / 2 + c["petal_length_per_sepal_length"] / 2
        assert answer.by_input["petal_length"] == pytest.approx(expected, abs=1e-12)
        assert explainer.explain(row[None, :], "setosa")[0].explained_class == "setosa"


def test_the_linear_path_equals_shap_linear_explainer_with_the_training_rows_as_background(
    iris_frame: pd.DataFrame, params: Params
) -> None:
    import shap

    result = fitted(iris_frame, params, "logistic_regression")
    explainer = Explainer(result.pipeline)
    assert explainer.method == LINEAR
    model = result.pipeline[-1]
    background = explainer.transform(result.split.X_train[params.dataset.feature_names].to_numpy())
    masker = shap.maskers.Independent(background, max_samples=len(background))  # all of them, not a sample of 100
    reference = shap.LinearExplainer((model.coef_, model.intercept_), masker)
    X = np.vstack([rows(result, params), result.split.X_train[params.dataset.feature_names].to_numpy()])  # 149 rows
    base, ours = explainer.attributions(X)
    np.testing.assert_allclose(ours, reference.shap_values(explainer.transform(X)), atol=1e-9)
    np.testing.assert_allclose(base, reference.expected_value, atol=1e-9)


def test_the_tree_path_equals_shap_tree_explainer(iris_frame: pd.DataFrame, params: Params) -> None:
    import shap

    result = fitted(iris_frame, params, "random_forest")
    explainer = Explainer(result.pipeline)
    assert explainer.method == TREE
    X = rows(result, params)
    reference = shap.TreeExplainer(result.pipeline[-1])
    base, ours = explainer.attributions(X)
    np.testing.assert_allclose(ours, reference.shap_values(explainer.transform(X)), atol=1e-12)
    np.testing.assert_allclose(base, reference.expected_value, atol=1e-12)


class CountingModel:
    """The final estimator, counting the rows it is asked to score."""

    def __init__(self, model: Any) -> None:
        self.model, self.rows, self.classes_ = model, 0, model.classes_

    def predict_proba(self, values: np.ndarray) -> np.ndarray:
        self.rows += len(values)
        return self.model.predict_proba(values)


@pytest.mark.parametrize("estimator", ["svc", "knn"])
def test_the_model_agnostic_path_gives_exact_shapley_values_at_a_bounded_cost(
    estimator: str, iris_frame: pd.DataFrame, params: Params
) -> None:
    import shap

    result = fitted(iris_frame, params, estimator)
    train = result.split.X_train[params.dataset.feature_names].to_numpy()
    explainer = Explainer(result.pipeline, train, seed=params.train.seed, background_rows=10)
    assert (explainer.method, explainer.background_size) == (KERNEL, 10)
    counting = explainer.estimator = CountingModel(explainer.estimator)
    X = rows(result, params)[:12]
    base, ours = explainer.attributions(X)
    coalitions = 2 ** len(explainer.features)  # 256: every coalition is enumerated, nothing sampled
    assert counting.rows <= len(X) * (coalitions + 1) * 10 + 10
    exact = shap.explainers.Exact(result.pipeline[-1].predict_proba, shap.maskers.Independent(explainer._background))
    reference = exact(explainer.transform(X))
    np.testing.assert_allclose(ours, reference.values, atol=1e-5)  # a weighted least-squares solve: 1e-6 apart
    np.testing.assert_allclose(base, reference.base_values[0], atol=1e-9)


def test_the_same_seed_picks_the_same_background(iris_frame: pd.DataFrame, params: Params) -> None:
    result = fitted(iris_frame, params, "knn")
    train = result.split.X_train[params.dataset.feature_names].to_numpy()
    first, second, other = (Explainer(result.pipeline, train, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(first._background, second._background)
    assert not np.array_equal(first._background, other._background)
    assert first.background_size == 20


def test_global_importance_is_the_mean_absolute_contribution_for_the_predicted_class(case, params: Params) -> None:
    result, explainer = case
    X = rows(result, params)
    importance = explainer.global_importance(X)
    answers = explainer.explain(X)
    for feature in explainer.features:
        expected = np.mean([abs(a.contributions[feature]) for a in answers])
        assert importance[feature] == pytest.approx(expected, abs=1e-12)
