"""The model pipeline: derived features, imputation and the estimator live inside one fitted object."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.params import Params
from pipelines.features import DerivedFeatures, build_pipeline, make_estimator
from pipelines.fit import fit_and_evaluate


def test_derived_features_compute_products_and_ratios() -> None:
    X = pd.DataFrame({"a": [2.0, 3.0], "b": [4.0, 0.0]})
    step = DerivedFeatures(products=[("a", "b")], ratios=[("a", "b")]).fit(X)
    out = step.transform(X)
    assert list(step.get_feature_names_out()) == ["a", "b", "a_x_b", "a_per_b"]
    assert out[:, 2].tolist() == [8.0, 0.0]
    assert out[0, 3] == 0.5
    assert np.isnan(out[1, 3])  # zero denominator is missing, not infinite


def test_derived_features_read_columns_by_name_not_position() -> None:
    X = pd.DataFrame({"a": [2.0], "b": [4.0]})
    step = DerivedFeatures(products=[("a", "b")], ratios=[("a", "b")]).fit(X)
    assert np.array_equal(step.transform(X[["b", "a"]]), step.transform(X))


def test_pipeline_imputes_missing_inputs(iris_frame, params: Params) -> None:
    result = fit_and_evaluate(iris_frame, params)
    row = result.split.X_test.head(1).copy()
    row.iloc[0, 0] = np.nan
    proba = result.pipeline.predict_proba(row)
    assert np.isfinite(proba).all()
    assert proba.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("estimator", ["random_forest", "svc", "knn"])
def test_every_listed_estimator_trains(iris_frame, params: Params, estimator: str) -> None:
    train = params.train.model_copy(update={"estimator": estimator, "hyperparams": {}})
    result = fit_and_evaluate(iris_frame, params.model_copy(update={"train": train}))
    assert result.metrics["test_accuracy"] > 0.8
    assert hasattr(result.pipeline, "predict_proba")


def test_hyperparams_that_do_not_fit_the_estimator_are_a_clear_error(params: Params) -> None:
    train = params.train.model_copy(update={"estimator": "random_forest"})  # keeps logistic regression's C
    with pytest.raises(ValueError, match="hyperparameters are per estimator"):
        make_estimator(train)


def test_pipeline_is_one_object_with_features_inside(params: Params) -> None:
    pipe = build_pipeline(params.features, params.train)
    assert [name for name, _ in pipe.steps] == ["derive", "impute", "scale", "model"]
