"""Hyperparameter search: an Optuna study over the configured estimator's space, judged on CV folds only.

Concept: hyperparameter search (C56). The space comes from ``train.search.space.<estimator>`` in params.yaml,
so switching estimator switches space. TPE (seeded) proposes each trial; the objective is the mean accuracy
over the cross-validation folds of the *training part* (never the test split, never the gate's holdout), and
after each fold the running mean is reported, so the median pruner can stop a trial that is already below the
median of the earlier trials at that fold. The winner is refitted by `pipelines.fit` like any candidate and
then faces the same gate. This module is pure: MLflow logging is a callback (`pipelines.search_tracking`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from core.params import Params, SearchDimension

COMPLETE, PRUNED = "COMPLETE", "PRUNED"


@dataclass(frozen=True)
class TrialRecord:
    """One trial as it ended: what it tried, the fold scores it got to, and whether it was pruned."""

    number: int
    state: str  # COMPLETE | PRUNED
    params: dict[str, Any]
    fold_scores: tuple[float, ...]

    @property
    def folds_run(self) -> int:
        return len(self.fold_scores)

    @property
    def mean(self) -> float:
        """The running CV mean the trial ended with: the objective for a complete trial."""
        return float(np.mean(self.fold_scores))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_scores))


@dataclass(frozen=True)
class StudyOutcome:
    trials: list[TrialRecord]
    best: TrialRecord  # the highest CV mean among complete trials; the earliest on a tie
    stopped_by_timeout: bool

    @property
    def pruned(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.state == PRUNED]

    def summary(self) -> dict[str, Any]:
        """What the CLI, the demo and the parent run show: counts, the winner and its CV mean."""
        return {
            "trials": len(self.trials),
            "complete": len(self.trials) - len(self.pruned),
            "pruned": len(self.pruned),
            "best_trial": self.best.number,
            "best_params": dict(self.best.params),
            "best_cv_accuracy_mean": self.best.mean,
            "stopped_by_timeout": self.stopped_by_timeout,
        }


def suggest(trial: Any, space: dict[str, SearchDimension]) -> dict[str, Any]:
    """Ask the trial for one value per hyperparameter of the space (in the order params.yaml lists them)."""
    values: dict[str, Any] = {}
    for name, dim in space.items():
        if dim.type == "categorical":
            values[name] = trial.suggest_categorical(name, list(dim.choices or []))
        elif dim.type == "int":
            values[name] = trial.suggest_int(name, int(dim.low or 0), int(dim.high or 0), log=dim.log)
        else:
            values[name] = trial.suggest_float(name, float(dim.low or 0), float(dim.high or 0), log=dim.log)
    return values


def run_study(
    X: pd.DataFrame,
    y: pd.Series,
    params: Params,
    on_trial: Callable[[TrialRecord], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> StudyOutcome:
    """Search ``params.train.search_space`` on (X, y), the training part; ``on_trial`` sees every finished trial.

    The folds are the ones `pipelines.fit` cross-validates with (same seed), so a complete trial's value is
    the ``cv_accuracy_mean`` its refit will log. ``timeout_s`` is checked after each trial on ``clock``: the
    trial in progress finishes, at least one trial always runs, and no new one starts once it has passed.
    """
    import optuna
    from sklearn.base import clone
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import StratifiedKFold

    from pipelines.features import build_pipeline

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the trials are on MLflow and in the report
    train, cfg = params.train, params.train.search
    folds = list(StratifiedKFold(n_splits=train.cv_folds, shuffle=True, random_state=train.seed).split(X, y))
    records: list[TrialRecord] = []

    def finish(trial: Any, state: str, hp: dict[str, Any], scores: list[float]) -> None:
        record = TrialRecord(trial.number, state, hp, tuple(scores))
        records.append(record)
        if on_trial is not None:
            on_trial(record)

    def objective(trial: Any) -> float:
        hp = suggest(trial, train.search_space)
        model = build_pipeline(params.features, train, hp)
        scores: list[float] = []
        for step, (fit_rows, score_rows) in enumerate(folds):
            fitted = clone(model).fit(X.iloc[fit_rows], y.iloc[fit_rows])
            scores.append(float(accuracy_score(y.iloc[score_rows], fitted.predict(X.iloc[score_rows]))))
            trial.report(float(np.mean(scores)), step)
            if cfg.pruning and step + 1 < len(folds) and trial.should_prune():
                finish(trial, PRUNED, hp, scores)
                raise optuna.TrialPruned()
        finish(trial, COMPLETE, hp, scores)
        return float(np.mean(scores))

    started, timed_out = clock(), False

    def stop_after_timeout(study: Any, _trial: Any) -> None:
        nonlocal timed_out
        if cfg.timeout_s is not None and clock() - started >= cfg.timeout_s:
            timed_out = True
            study.stop()

    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=cfg.startup_trials, n_warmup_steps=cfg.min_folds - 1)
        if cfg.pruning
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=cfg.seed, n_startup_trials=cfg.startup_trials),
        pruner=pruner,
    )
    study.optimize(objective, n_trials=cfg.trials, callbacks=[stop_after_timeout], gc_after_trial=False)
    complete = [t for t in records if t.state == COMPLETE]
    best = max(complete, key=lambda t: (t.mean, -t.number))  # the first trial can never be pruned
    return StudyOutcome(records, best, timed_out and len(records) < cfg.trials)
