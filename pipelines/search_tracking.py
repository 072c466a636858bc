"""A search on MLflow: one parent run, one nested run per trial, and the winner logged as the candidate.

Concept: hyperparameter search (C56) and experiment tracking (C11). The parent run ``search`` holds the study's
settings, the best params and CV mean, and the comparison report (``search/trials.md``, ``trials.csv``,
``objective.png``, ``study.json``). Each trial is a nested run with its params, one ``cv_fold_accuracy`` per
fold run (step = fold) and its state (tag ``search.state``: COMPLETE or PRUNED). The winner is refitted with
`pipelines.fit.fit_and_evaluate` and logged by `pipelines.tracking.log_training_run` exactly like a normal
candidate (nested under the parent), so the gate, the registry and ``mlops-lab reproduce`` treat it the same:
its ``evaluation/hyperparams.json`` holds the best params.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.mlflow_config import mlflow_client
from pipelines.fit import fit_and_evaluate, split_data
from pipelines.registry import ensure_experiment
from pipelines.search import StudyOutcome, TrialRecord, run_study
from pipelines.search_report import plot_objective, trials_csv, trials_markdown
from pipelines.tracking import log_training_run

if TYPE_CHECKING:
    import pandas as pd

    from core.params import Params
    from core.settings import Settings
    from pipelines.fit import TrainResult
    from pipelines.tracking import LoggedRun


@dataclass
class SearchRuns:
    """The MLflow runs of one search: the parent and its trials, in trial order."""

    parent_id: str
    trial_ids: list[str] = field(default_factory=list)


def _trial_logger(settings: Settings, experiment_id: str, runs: SearchRuns, tags: dict[str, str]) -> Any:
    """A callback that writes one finished trial as a nested run under the parent (one batch per trial)."""
    from mlflow.entities import Metric, Param, RunTag

    client = mlflow_client(settings)

    def log(trial: TrialRecord) -> None:
        run = client.create_run(
            experiment_id,
            run_name=f"trial {trial.number}",
            tags={**tags, "mlflow.parentRunId": runs.parent_id},
        )
        now = int(time.time() * 1000)
        metrics = [Metric("cv_fold_accuracy", s, now, i) for i, s in enumerate(trial.fold_scores)]
        metrics += [Metric("cv_accuracy_mean", trial.mean, now, 0), Metric("cv_accuracy_std", trial.std, now, 0)]
        client.log_batch(
            run.info.run_id,
            metrics=metrics,
            params=[Param(f"model.{k}", str(v)) for k, v in trial.params.items()],
            tags=[
                RunTag("search.state", trial.state),
                RunTag("search.trial", str(trial.number)),
                RunTag("search.folds_run", str(trial.folds_run)),
            ],
        )
        client.set_terminated(run.info.run_id, "FINISHED")
        runs.trial_ids.append(run.info.run_id)

    return log


def log_study_report(outcome: StudyOutcome, params: Params) -> None:
    """The comparison report and the study's summary on the active (parent) run."""
    import mlflow

    cfg = params.train.search
    summary = outcome.summary()
    mlflow.log_params(
        {
            "estimator": params.train.estimator,
            "search.trials": cfg.trials,
            "search.seed": cfg.seed,
            "search.pruning": cfg.pruning,
            "search.startup_trials": cfg.startup_trials,
            "search.min_folds": cfg.min_folds,
            "search.timeout_s": cfg.timeout_s,
            "search.space": json.dumps(
                {k: v.model_dump(exclude_none=True) for k, v in params.train.search_space.items()}
            ),
            **{f"best.{k}": v for k, v in outcome.best.params.items()},
        }
    )
    mlflow.log_metrics(
        {
            "best_cv_accuracy_mean": outcome.best.mean,
            "trials_run": float(summary["trials"]),
            "trials_complete": float(summary["complete"]),
            "trials_pruned": float(summary["pruned"]),
            "folds_evaluated": float(sum(t.folds_run for t in outcome.trials)),
        }
    )
    mlflow.set_tag("search.best_trial", str(outcome.best.number))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "trials.md").write_text(trials_markdown(outcome, params.train.cv_folds), encoding="utf-8")
        (folder / "trials.csv").write_text(trials_csv(outcome), encoding="utf-8")
        (folder / "study.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        plot_objective(outcome, folder / "objective.png")
        mlflow.log_artifacts(str(folder), artifact_path="search")


def search_candidate(
    settings: Settings,
    params: Params,
    frame: pd.DataFrame,
    tags: dict[str, str],
    clock: Callable[[], float] = time.monotonic,
) -> tuple[TrainResult, LoggedRun, SearchRuns, StudyOutcome]:
    """Run the study on the training part of ``frame`` (holdout already removed), log it, log the winner.

    The study sees ``split_data(frame).X_train`` only: the test split scores the refitted winner once, as for
    any candidate, and the gate's holdout was removed by the caller.
    """
    import mlflow

    experiment_id = ensure_experiment(settings)
    split = split_data(frame, params)
    with mlflow.start_run(experiment_id=experiment_id, run_name="search") as parent:
        mlflow.set_tags({**tags, "search": "parent"})
        runs = SearchRuns(parent.info.run_id)
        outcome = run_study(
            split.X_train, split.y_train, params, _trial_logger(settings, experiment_id, runs, tags), clock
        )
        log_study_report(outcome, params)
        result = fit_and_evaluate(frame, params, outcome.best.params)
        candidate_tags = {**tags, "search.parent_run_id": runs.parent_id, "search.best_trial": str(outcome.best.number)}
        logged = log_training_run(settings, params, result, candidate_tags, run_name="candidate", nested=True)
        mlflow.set_tag("search.candidate_run_id", logged.run_id)
    return result, logged, runs, outcome
