"""What a fairness mitigation would give a candidate, reported beside the gate's figures (C58).

The gate measures the candidate's fairness on the test split; this adds, to the same report, what
fairlearn's ThresholdOptimizer (equalized odds, per-group thresholds on the positive class's probability)
would make of the same test rows: before and after, side by side. It is a what-if, never served: the
served model stays the one the gate judged (serving a mitigated model needs the group on every request,
randomises ties, and would need its own ONNX parity and approval).

The thresholds are fitted on *out-of-fold* probabilities of the training split (each row scored by a copy
of the pipeline that did not train on it, `cross_val_predict` with the training folds): a model's
probabilities on its own training rows are overconfident (a forest gives its training rows ~1.0), and
thresholds fitted there would not carry over. The test rows are never used to fit anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from pipelines.fairness import fairness_report, positive_class_of, relabel

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from core.params import Params
    from pipelines.fit import Split

METHOD = "fairlearn ThresholdOptimizer (equalized odds, per-group thresholds)"


class _Scores(ClassifierMixin, BaseEstimator):
    """A fitted scorer that looks its scores up by row number (column 0 of X): the what-if's estimator."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores
        self.classes_ = np.array([0, 1])

    def fit(self, X: Any, y: Any) -> _Scores:  # prefit: nothing to learn
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        p = self.scores[np.asarray(X)[:, 0].astype(int)]
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def mitigation_what_if(pipeline: Pipeline, split: Split, params: Params) -> dict[str, Any] | None:
    """Before/after figures of a threshold mitigation on the test split; None without groups.

    A mitigation that cannot be fitted (a group with one outcome only, too few rows) is reported as
    ``{"error": ...}``, never raised: the what-if must not fail a training.
    """
    from fairlearn.postprocessing import ThresholdOptimizer
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    if split.groups_test is None or split.groups_train is None:
        return None
    cfg, column = params.gate.fairness, params.dataset.group_column or "group"
    classes = [str(c) for c in pipeline.classes_]
    positive = positive_class_of(cfg, classes)
    at = classes.index(positive)
    seed = params.train.seed
    unfitted = sorted(set(split.groups_test) - set(split.groups_train))
    if unfitted:  # fairlearn would not refuse them; a threshold needs rows of the group to be fitted on
        return {"error": f"group(s) {unfitted} of the test split have no training rows to fit a threshold on"}
    try:
        folds = StratifiedKFold(n_splits=params.train.cv_folds, shuffle=True, random_state=seed)
        oof = cross_val_predict(clone(pipeline), split.X_train, split.y_train, cv=folds, method="predict_proba")
        test_proba = np.asarray(pipeline.predict_proba(split.X_test))
        n_train, n_test = len(oof), len(test_proba)
        optimizer = ThresholdOptimizer(
            estimator=_Scores(np.concatenate([oof[:, at], test_proba[:, at]])),
            constraints="equalized_odds",
            objective="balanced_accuracy_score",
            prefit=True,
            predict_method="predict_proba",
        )
        truth = (split.y_train.astype(str).to_numpy() == positive).astype(int)
        optimizer.fit(np.arange(n_train).reshape(-1, 1), truth, sensitive_features=split.groups_train.to_numpy())
        yes = optimizer.predict(
            np.arange(n_train, n_train + n_test).reshape(-1, 1),
            sensitive_features=split.groups_test.to_numpy(),
            random_state=seed,
        )
        mitigated = relabel(test_proba, np.asarray(yes).astype(bool), classes, positive)
        as_trained = np.asarray(classes)[test_proba.argmax(axis=1)]
        before, after = (
            fairness_report(split.y_test, answers, split.groups_test, positive, column, cfg.min_group_size)
            for answers in (as_trained, mitigated)
        )
    except ValueError as err:
        return {"error": str(err)[:300]}
    keys = ("equalized_odds_difference", "demographic_parity_difference", "accuracy")
    return {
        "method": METHOD,
        "fitted_on": f"out-of-fold probabilities of the training split ({params.train.cv_folds} folds)",
        "served": False,
        "before": {k: round(getattr(before, k), 4) for k in keys},
        "after": {k: round(getattr(after, k), 4) for k in keys},
    }
