"""Feature engineering that travels with the model.

Concept: feature engineering (C08) and training-serving skew (C09). Derived features (areas,
ratios) are computed by a scikit-learn transformer *inside* the one ``Pipeline`` that is logged to
MLflow. Serving loads that same artefact, so there is no second implementation of the features
that could drift apart from training: the classic source of training-serving skew.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from core.params import FeatureParams, TrainParams


class DerivedFeatures(TransformerMixin, BaseEstimator):
    """Append products (e.g. petal area) and ratios (e.g. petal length / sepal length).

    Stateless: ``fit`` only records the input columns, so the transformer is safe inside
    cross-validation. A DataFrame is read *by column name* (a request may send the fields in any
    order); an array is taken to be in contract order. The output is a plain float array, because
    per-step pandas output costs milliseconds per request. A missing input makes its derived values
    missing too (the imputer after this step fills them); a zero denominator gives NaN, not inf.
    """

    def __init__(self, products: list[tuple[str, str]] | None = None, ratios: list[tuple[str, str]] | None = None):
        self.products = products
        self.ratios = ratios

    def fit(self, X: pd.DataFrame, y: Any = None) -> DerivedFeatures:
        if not isinstance(X, pd.DataFrame):
            raise TypeError("DerivedFeatures must be fitted on a DataFrame: it needs the column names")
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def _derived_names(self) -> list[str]:
        names = [f"{a}_x_{b}" for a, b in self.products or []]
        return names + [f"{a}_per_{b}" for a, b in self.ratios or []]

    def transform(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        names = list(self.feature_names_in_)
        values = X[names].to_numpy(dtype="float64") if isinstance(X, pd.DataFrame) else np.asarray(X, "float64")
        col = {name: values[:, i] for i, name in enumerate(names)}
        derived = [col[a] * col[b] for a, b in self.products or []]
        with np.errstate(divide="ignore", invalid="ignore"):
            derived += [np.where(col[b] == 0.0, np.nan, col[a] / col[b]) for a, b in self.ratios or []]
        return np.column_stack([values, *derived]) if derived else values

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([*self.feature_names_in_, *self._derived_names()], dtype=object)


def _estimator_class(name: str) -> tuple[Any, bool]:
    """(class, takes random_state) for an estimator name from params.yaml."""
    if name == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression, True
    if name == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier, True
    if name == "svc":
        from sklearn.svm import SVC

        return SVC, True
    if name == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier, False
    raise ValueError(f"unknown estimator {name!r}; use one listed in core/params.py")


def make_estimator(train: TrainParams, hyperparams: dict[str, Any] | None = None) -> BaseEstimator:
    """The classifier named in params.yaml, seeded for reproducibility.

    SVC has no native probabilities, so it is wrapped in a seeded-CV calibrator: the gate and the
    API both need ``predict_proba``.
    """
    hp = {**train.hyperparams, **(hyperparams or {})}
    cls, seeded = _estimator_class(train.estimator)
    try:
        estimator = cls(**({"random_state": train.seed} if seeded else {}), **hp)
    except TypeError as err:
        raise ValueError(
            f"train.hyperparams {sorted(hp)} do not fit estimator {train.estimator!r} ({err}); "
            "hyperparameters are per estimator: change them together in params.yaml"
        ) from err
    if train.estimator == "svc":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedKFold

        folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=train.seed)
        return CalibratedClassifierCV(estimator, cv=folds)
    return estimator


def build_pipeline(features: FeatureParams, train: TrainParams, hyperparams: dict[str, Any] | None = None) -> Pipeline:
    """Derive → impute → scale → classify, as one fitted artefact.

    Derived features come first, while the column names are still known; the imputer then fills
    any missing value (raw or derived) with its training median. For a dataset whose contract
    forbids nulls it is a no-op; for one that allows them it is the documented policy.
    """
    return Pipeline(
        steps=[
            ("derive", DerivedFeatures(products=list(features.products), ratios=list(features.ratios))),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", make_estimator(train, hyperparams)),
        ]
    )
