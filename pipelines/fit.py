"""Fit one model the reproducible way: stratified seeded split, cross-validation, held-out test.

Concept: offline evaluation and reproducibility (C10, C04). Everything random takes the seed from
params.yaml, so the same data + params + locked environment give the same model and the same
metrics, bit for bit: that is what ``mlops-lab reproduce`` checks. This module is pure: it takes a
DataFrame and params and returns a result; tracking and registration happen elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline

from core.params import Params
from pipelines.data import split_features_target
from pipelines.evaluate import Evaluation, evaluate_model
from pipelines.features import build_pipeline


@dataclass(frozen=True)
class Split:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    groups_test: pd.Series | None  # the optional slice column, aligned with X_test
    groups_train: pd.Series | None = None  # the same column, aligned with X_train


@dataclass(frozen=True)
class TrainResult:
    pipeline: Pipeline
    split: Split
    cv_scores: list[float]
    evaluation: Evaluation
    hyperparams: dict[str, Any]

    @property
    def metrics(self) -> dict[str, float]:
        """Test metrics plus the cross-validation summary, as flat MLflow keys."""
        return {
            **self.evaluation.flat_metrics(),
            "cv_accuracy_mean": float(np.mean(self.cv_scores)),
            "cv_accuracy_std": float(np.std(self.cv_scores)),
        }


def split_data(frame: pd.DataFrame, params: Params) -> Split:
    """Stratified, seeded train/test split; the same rows every time for the same data and seed."""
    cfg = params.dataset
    X, y = split_features_target(frame, cfg)
    groups = frame[cfg.group_column].astype(str) if cfg.group_column and cfg.group_column in frame else None
    index_train, index_test = train_test_split(
        frame.index, test_size=params.train.test_size, stratify=y, random_state=params.train.seed
    )
    return Split(
        X_train=X.loc[index_train],
        X_test=X.loc[index_test],
        y_train=y.loc[index_train],
        y_test=y.loc[index_test],
        groups_test=None if groups is None else groups.loc[index_test],
        groups_train=None if groups is None else groups.loc[index_train],
    )


def fit_and_evaluate(frame: pd.DataFrame, params: Params, hyperparams: dict[str, Any] | None = None) -> TrainResult:
    """Cross-validate on the training part, fit on all of it, score on the held-out part."""
    split = split_data(frame, params)
    merged = {**params.train.hyperparams, **(hyperparams or {})}
    pipeline = build_pipeline(params.features, params.train, merged)
    folds = StratifiedKFold(n_splits=params.train.cv_folds, shuffle=True, random_state=params.train.seed)
    cv_scores = cross_val_score(pipeline, split.X_train, split.y_train, cv=folds, scoring="accuracy")
    pipeline.fit(split.X_train, split.y_train)
    evaluation = evaluate_model(pipeline, split.X_test, split.y_test, params.dataset.classes)
    return TrainResult(pipeline, split, [float(s) for s in cv_scores], evaluation, merged)
