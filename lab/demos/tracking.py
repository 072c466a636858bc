"""Demo "tracking" (C10, C11): a sweep as nested MLflow runs, judged on CV, scored on a holdout."""

from __future__ import annotations

from core.context import LabContext
from core.mlflow_config import mlflow_client
from lab.demos.prep import ensure_raw_data, show_outcome
from lab.narrate import Narrator
from pipelines.training_steps import run_training, sweep_grid


def run(n: Narrator, ctx: LabContext) -> None:

    n.title("Experiment tracking and offline evaluation", "C10 C11")
    data = ensure_raw_data(ctx, n)
    grid = sweep_grid(ctx.params)
    n.step(f"Sweep {len(grid)} settings of {ctx.params.train.estimator} ({', '.join(map(str, grid))})")
    n.why(
        "each trial is a nested MLflow run with params, CV and test metrics, a confusion matrix and the model; "
        "the winner is picked on cross-validation only, so the held-out test score stays an honest estimate."
    )
    outcome = run_training(ctx.settings, ctx.params, data, sweep=True)
    client = mlflow_client(ctx.settings)
    rows = []
    for run_id in outcome.sweep_run_ids[1:]:
        run = client.get_run(run_id)
        m = run.data.metrics
        mark = "← candidate" if run_id == outcome.run_id else ""
        rows.append([run.info.run_name, f"{m['cv_accuracy_mean']:.4f}", f"{m['test_accuracy']:.4f}", mark])
    n.table("nested runs", ["trial", "CV accuracy (train part)", "test accuracy (holdout)", ""], rows)

    n.step("What one run holds")
    run = client.get_run(outcome.run_id)
    artifacts = [a.path for a in client.list_artifacts(outcome.run_id, "evaluation")]
    n.say(f"params: {dict(list(run.data.params.items())[:5])} …")
    n.say(f"lineage tags: git_sha={run.data.tags['git_sha'][:10]} data_md5={run.data.tags['data_md5']}")
    n.say(f"artifacts: {', '.join(artifacts)}, model/ (pipeline + signature + input example)")
    n.step("Then the candidate went through the quality gate:")
    show_outcome(n, outcome)
    n.code("pipelines/fit.py", "pipelines/evaluate.py", "pipelines/tracking.py", "pipelines/training_steps.py")
    n.say(f"browse it: mlflow ui --backend-store-uri {ctx.settings.mlflow_tracking_uri}")
