"""The hyperparameter search: a real Optuna study on iris's training part, pruning, seeding, timeout, report.

Small studies (a handful of trials) keep each test to a few seconds; the MLflow test uses a real SQLite store.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path
from typing import Any

import mlflow
import pytest

from core.mlflow_config import mlflow_client
from core.params import Params, SearchDimension
from pipelines.fit import fit_and_evaluate, split_data
from pipelines.search import COMPLETE, PRUNED, StudyOutcome, run_study
from pipelines.search_report import best_so_far, plot_objective, trials_csv, trials_markdown

# k nearest neighbours (fast to fit) with k up to 70 of the ~83 rows a fold trains on: large k spans the
# classes (about 0.67 accuracy per fold), small k is good (0.9 to 1.0): a space with a bad region.
BAD_AND_GOOD = {"n_neighbors": SearchDimension(type="int", low=1, high=70)}


def searching(
    params: Params, space: dict[str, SearchDimension] | None = None, estimator: str | None = None, **search: Any
) -> Params:
    """``params`` with the search settings (and the configured estimator's space) replaced."""
    train = params.train
    if estimator is not None:
        train = train.model_copy(update={"estimator": estimator, "hyperparams": {}})
    spaces = dict(train.search.space)
    if space is not None:
        spaces[train.estimator] = space
    cfg = train.search.model_copy(update={**search, "space": spaces})
    return params.model_copy(update={"train": train.model_copy(update={"search": cfg})})


@pytest.fixture(scope="module")
def training_part(iris_frame, params: Params):
    split = split_data(iris_frame, params)
    return split.X_train, split.y_train


@pytest.fixture(scope="module")
def pruned_study(training_part, params: Params) -> tuple[Params, StudyOutcome]:
    tuned = searching(params, BAD_AND_GOOD, "knn", trials=8, seed=3, startup_trials=3, min_folds=2, pruning=True)
    return tuned, run_study(*training_part, tuned)


def test_pruning_stops_bad_trials_after_the_minimum_folds(pruned_study) -> None:
    tuned, outcome = pruned_study
    folds = tuned.train.cv_folds
    assert outcome.pruned, [(t.number, t.params, t.fold_scores) for t in outcome.trials]
    for trial in outcome.pruned:
        assert tuned.train.search.min_folds <= trial.folds_run < folds  # stopped early, never before the minimum
        assert trial.number >= tuned.train.search.startup_trials  # the startup trials always run every fold
    assert all(t.folds_run == folds for t in outcome.trials if t.state == COMPLETE)
    assert sum(t.folds_run for t in outcome.trials) < folds * len(outcome.trials)
    best_pruned = max(t.mean for t in outcome.pruned)
    assert best_pruned < outcome.best.mean  # what was pruned was worse than the winner so far


def test_without_pruning_every_trial_runs_every_fold(training_part, params: Params) -> None:
    tuned = searching(params, BAD_AND_GOOD, "knn", trials=6, seed=3, startup_trials=2, pruning=False)
    outcome = run_study(*training_part, tuned)
    assert [t.state for t in outcome.trials] == [COMPLETE] * 6
    assert {t.folds_run for t in outcome.trials} == {tuned.train.cv_folds}


def test_same_seed_gives_the_same_trials_and_winner_another_seed_does_not(
    pruned_study, training_part, params: Params
) -> None:
    tuned, first = pruned_study
    again = run_study(*training_part, tuned)
    assert [(t.number, t.state, t.params, t.fold_scores) for t in again.trials] == [
        (t.number, t.state, t.params, t.fold_scores) for t in first.trials
    ]
    assert again.best.params == first.best.params
    other = run_study(*training_part, searching(tuned, trials=3, seed=4))
    assert [t.params for t in other.trials] != [t.params for t in first.trials[:3]]


def test_a_complete_trials_value_is_the_cv_mean_its_refit_logs(pruned_study, iris_frame) -> None:
    """The objective is the CV accuracy of the training part: the refit's cv_accuracy_mean, bit for bit."""
    tuned, outcome = pruned_study
    refit = fit_and_evaluate(iris_frame, tuned, outcome.best.params)
    assert refit.metrics["cv_accuracy_mean"] == outcome.best.mean
    assert list(outcome.best.fold_scores) == refit.cv_scores
    assert outcome.best.mean == max(t.mean for t in outcome.trials if t.state == COMPLETE)


def test_switching_estimator_switches_space(training_part, params: Params) -> None:
    outcome = run_study(*training_part, searching(params, estimator="knn", trials=3))
    assert all(set(t.params) == {"n_neighbors", "weights"} for t in outcome.trials)
    assert all(isinstance(t.params["n_neighbors"], int) and 1 <= t.params["n_neighbors"] <= 30 for t in outcome.trials)
    assert {t.params["weights"] for t in outcome.trials} <= {"uniform", "distance"}


def test_the_timeout_lets_the_trial_in_progress_finish_and_starts_no_other(training_part, params: Params) -> None:
    ticks = itertools.count(0.0, 10.0)  # a scripted clock: 10 s per reading (start, then after each trial)
    timed = searching(params, estimator="knn", trials=8, timeout_s=25.0)
    outcome = run_study(*training_part, timed, clock=lambda: next(ticks))
    assert len(outcome.trials) == 3  # readings 10, 20 go on; 30 >= 25 stops after the third trial
    assert outcome.stopped_by_timeout
    untimed = run_study(*training_part, searching(timed, trials=2, timeout_s=None), clock=lambda: next(ticks))
    assert (len(untimed.trials), untimed.stopped_by_timeout) == (2, False)


def test_the_plot_draws_every_trial_and_the_best_so_far(pruned_study, tmp_path: Path) -> None:
    _, outcome = pruned_study
    drawn = plot_objective(outcome, tmp_path / "objective.png")
    assert (tmp_path / "objective.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for state in (COMPLETE, PRUNED):
        chosen = [t for t in outcome.trials if t.state == state]
        assert drawn[state.lower()] == ([float(t.number) for t in chosen], [t.mean for t in chosen])
    xs, ys = drawn["best_so_far"]
    assert xs == [float(t.number) for t in outcome.trials]  # trial 0 is always complete
    assert ys == [max(t.mean for t in outcome.trials[: i + 1] if t.state == COMPLETE) for i in range(len(xs))]
    assert (xs, ys) == best_so_far(outcome.trials)
    assert ys[-1] == outcome.best.mean


def test_the_table_lists_every_trial_with_state_cv_and_folds(pruned_study) -> None:
    tuned, outcome = pruned_study
    rows = list(csv.DictReader(io.StringIO(trials_csv(outcome))))
    assert [int(r["trial"]) for r in rows] == [t.number for t in outcome.trials]
    assert [r["state"] for r in rows] == [t.state for t in outcome.trials]
    assert [float(r["cv_mean"]) for r in rows] == [t.mean for t in outcome.trials]
    assert [int(r["folds_run"]) for r in rows] == [t.folds_run for t in outcome.trials]
    markdown = trials_markdown(outcome, tuned.train.cv_folds)
    assert markdown.count("| PRUNED |") == len(outcome.pruned)
    assert f"| {outcome.best.number} **best** | COMPLETE |" in markdown
    assert f"{len(outcome.trials)} trials ({len(outcome.trials) - len(outcome.pruned)} complete" in markdown


def test_search_logs_a_parent_nested_trials_and_the_winner_as_candidate(settings, iris_frame, params: Params) -> None:
    from pipelines.search_tracking import search_candidate

    tuned = searching(params, BAD_AND_GOOD, "knn", trials=4, seed=3, startup_trials=2)
    result, logged, runs, outcome = search_candidate(settings, tuned, iris_frame, {"data_md5": "fake-md5"})
    client = mlflow_client(settings)
    trials = [client.get_run(r) for r in runs.trial_ids]
    assert len(trials) == len(outcome.trials)
    for run, trial in zip(trials, outcome.trials, strict=True):
        assert run.data.tags["mlflow.parentRunId"] == runs.parent_id
        assert run.data.tags["search.state"] == trial.state
        assert run.data.params["model.n_neighbors"] == str(trial.params["n_neighbors"])
        history = client.get_metric_history(run.info.run_id, "cv_fold_accuracy")
        assert [m.value for m in sorted(history, key=lambda m: m.step)] == list(trial.fold_scores)
    candidate = client.get_run(logged.run_id)
    assert candidate.data.tags["mlflow.parentRunId"] == runs.parent_id
    assert candidate.data.metrics["cv_accuracy_mean"] == outcome.best.mean
    hyperparams = json.loads(Path(client.download_artifacts(logged.run_id, "evaluation/hyperparams.json")).read_text())
    assert hyperparams == {**tuned.train.hyperparams, **outcome.best.params} == result.hyperparams
    parent = client.get_run(runs.parent_id)
    assert parent.data.metrics["best_cv_accuracy_mean"] == outcome.best.mean
    assert parent.data.metrics["trials_pruned"] == len(outcome.pruned)
    assert parent.data.tags["search.candidate_run_id"] == logged.run_id
    assert {a.path for a in client.list_artifacts(runs.parent_id, "search")} == {
        f"search/{name}" for name in ("trials.md", "trials.csv", "objective.png", "study.json")
    }
    logged_csv = mlflow.artifacts.load_text(f"runs:/{runs.parent_id}/search/trials.csv")
    assert logged_csv == trials_csv(outcome)


def test_optunas_own_log_stays_off_the_console(training_part, params: Params, capfd: pytest.CaptureFixture) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.INFO)  # as a fresh process starts: Optuna logs every trial
    run_study(*training_part, searching(params, estimator="knn", trials=2))
    out, err = capfd.readouterr()
    assert "Trial 0 finished" not in out + err
    assert "A new study created" not in out + err


def test_the_cli_line_and_the_flow_artifact_name_trials_pruned_and_the_winner(pruned_study) -> None:
    from pipelines.training_flow import decision_markdown
    from pipelines.training_report import search_line
    from pipelines.training_steps import TrainingOutcome

    _, outcome = pruned_study
    line = search_line(outcome.summary())
    best = outcome.best
    assert line.startswith(f"search: {len(outcome.trials)} trials ({len(outcome.pruned)} pruned); ")
    assert f"best by CV: trial {best.number} (n_neighbors={best.params['n_neighbors']}), " in line
    assert line.endswith(f"CV accuracy {best.mean:.4f}")
    done = TrainingOutcome("registered", "run-1", {}, {"reasons": []}, "3", "challenger", search=outcome.summary())
    assert f"- {line}" in decision_markdown(done)
