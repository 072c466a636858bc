"""Training is pure and deterministic: same data + params → same split, model and metrics."""

from __future__ import annotations

import numpy as np

from core.params import Params
from pipelines.fit import fit_and_evaluate, split_data


def test_training_twice_gives_identical_metrics_and_probabilities(iris_frame, params: Params) -> None:
    first = fit_and_evaluate(iris_frame, params)
    second = fit_and_evaluate(iris_frame, params)
    assert first.metrics == second.metrics
    X = first.split.X_test
    assert np.array_equal(first.pipeline.predict_proba(X), second.pipeline.predict_proba(X))


def test_a_different_seed_gives_a_different_split(iris_frame, params: Params) -> None:
    other = params.model_copy(update={"train": params.train.model_copy(update={"seed": 7})})
    assert set(split_data(iris_frame, params).X_test.index) != set(split_data(iris_frame, other).X_test.index)


def test_split_is_stratified_and_disjoint(iris_frame, params: Params) -> None:
    split = split_data(iris_frame, params)
    assert set(split.X_train.index).isdisjoint(split.X_test.index)
    assert len(split.X_test) == round(len(iris_frame) * params.train.test_size)
    shares = split.y_test.value_counts(normalize=True)
    assert shares.max() - shares.min() < 0.05


def test_result_reports_cv_and_per_class_metrics(iris_frame, params: Params) -> None:
    result = fit_and_evaluate(iris_frame, params)
    assert len(result.cv_scores) == params.train.cv_folds
    for cls in params.dataset.classes:
        assert 0.0 <= result.metrics[f"test_recall_{cls}"] <= 1.0
    assert result.metrics["test_accuracy"] >= params.gate.min_metric
    assert np.asarray(result.evaluation.confusion).sum() == len(result.split.X_test)
