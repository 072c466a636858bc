"""Demo "tracking" (C10, C11, C56): a hyperparameter search as nested MLflow runs, won on CV, then gated."""

from __future__ import annotations

from core.context import LabContext
from core.mlflow_config import mlflow_client
from lab.demos.prep import ensure_raw_data, show_outcome
from lab.narrate import Narrator
from pipelines.training_steps import run_training


def _short(value: str) -> str:
    """A logged param as people read it: 4 significant digits for a number, the text otherwise."""
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return value


def _space_text(ctx: LabContext) -> str:
    parts = []
    for name, dim in ctx.params.train.search_space.items():
        if dim.type == "categorical":
            parts.append(f"{name} in {dim.choices}")
        else:
            parts.append(f"{name} {dim.type} {dim.low:g}..{dim.high:g}{' (log)' if dim.log else ''}")
    return "; ".join(parts)


def run(n: Narrator, ctx: LabContext) -> None:

    n.title("Experiment tracking, offline evaluation and hyperparameter search", "C10 C11 C56")
    data = ensure_raw_data(ctx, n)
    search, folds = ctx.params.train.search, ctx.params.train.cv_folds
    n.step(
        f"Search {search.trials} trials of {ctx.params.train.estimator} over {_space_text(ctx)} "
        f"(Optuna TPE, seed {search.seed}; median pruning after {search.min_folds} of {folds} folds)"
    )
    n.why(
        "each trial is a nested MLflow run with its params and one score per CV fold; a trial whose running mean "
        "is below the median of earlier trials at that fold is pruned, so bad regions cost fewer folds. The winner "
        "is picked on cross-validation of the training part only, so the test and holdout scores stay honest."
    )
    outcome = run_training(ctx.settings, ctx.params, data, search=True)
    client = mlflow_client(ctx.settings)
    summary = outcome.search or {}
    rows = []
    for run_id in outcome.search_run_ids[1:]:
        run = client.get_run(run_id)
        tags, m = run.data.tags, run.data.metrics
        params = ", ".join(f"{k.removeprefix('model.')}={_short(v)}" for k, v in run.data.params.items())
        mark = "← winner" if tags["search.trial"] == str(summary.get("best_trial")) else ""
        ran = f"{tags['search.folds_run']}/{folds}"
        rows.append([run.info.run_name, tags["search.state"], params, f"{m['cv_accuracy_mean']:.4f}", ran, mark])
    n.table("nested runs", ["trial", "state", "params", "CV accuracy (train part)", "folds", ""], rows)
    n.say(
        f"{summary.get('trials')} trials, {summary.get('pruned')} pruned; the winner by CV is trial "
        f"{summary.get('best_trial')} ({summary.get('best_cv_accuracy_mean', 0.0):.4f}). The parent run "
        "holds the report: search/trials.md, trials.csv and objective.png (CV mean by trial, best so far)."
    )

    n.step("The winner, refitted on the whole training part, is the candidate: what its run holds")
    run = client.get_run(outcome.run_id)
    artifacts = [a.path for a in client.list_artifacts(outcome.run_id, "evaluation")]
    n.say(f"params: {dict(list(run.data.params.items())[:5])} …")
    n.say(f"lineage tags: git_sha={run.data.tags['git_sha'][:10]} data_md5={run.data.tags['data_md5']}")
    n.say(f"artifacts: {', '.join(artifacts)}, model/ (pipeline + signature + input example)")
    n.say(f"test accuracy (scored once, after the search): {run.data.metrics['test_accuracy']:.4f}")
    n.step("Then the candidate went through the same quality gate as any other:")
    show_outcome(n, outcome)
    n.code("pipelines/search.py", "pipelines/search_tracking.py", "pipelines/fit.py", "pipelines/tracking.py")
    n.say(f"browse it: mlflow ui --backend-store-uri {ctx.settings.mlflow_tracking_uri}")
