"""Prefect 3 flow ``monitoring``: read a window → run the checks → keep the reports → decide → maybe retrain.

Concept: the closed loop (C01, C37). One flow run is one look at production: the newest window of
the prediction log against the champion's training data. Every check's `Finding` is saved to the
shared database (the API's ``/metrics`` exports them, so Prometheus alerts on them), its HTML/JSON
reports and pictures (``findings-over-time.png``: every check's score over the last runs;
``online-accuracy.png`` with its table ``online-accuracy.csv``: accuracy per model version over time
from the labelled window) are written under the state folder and logged to MLflow as a run of the
``<experiment>-monitoring`` experiment; the findings table and the decision are published as Prefect
artifacts, so "why did it retrain at 03:00?" is answered in the Prefect UI. If a trigger fired, the
``retraining`` flow runs as a subflow: guarded, gated, and shipped as a canary -- never straight to every user.

The same flow runs on demand (``mlops-lab monitor``), on a cron schedule as a deployment
(``mlops-lab monitor --serve``), or from a Kubernetes CronJob against a Prefect server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from core.context import flow_context
from core.findings import save_findings
from core.params import Params
from core.settings import Settings
from flows.monitoring_outcome import MonitoringOutcome, findings_table
from flows.retraining_flow import retraining_flow
from monitoring.checks import run_checks
from monitoring.findings_plot import write_findings_picture
from monitoring.retrain_plan import decide
from monitoring.window import load_inputs
from pipelines.flow_runs import tag_this_run
from pipelines.registry import ensure_experiment
from serving.prediction_log import make_engine

if TYPE_CHECKING:
    import pandas as pd

    from core.findings import Finding
    from monitoring.window import CheckInputs


@task(name="read-window", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def read_window_task(settings: Settings, params: Params, window: int | None) -> CheckInputs:

    return load_inputs(settings, params, window)


@task(name="run-checks", cache_policy=NO_CACHE)
def run_checks_task(inputs: CheckInputs, params: Params, out_dir: Path) -> list[Finding]:

    return run_checks(inputs, params, out_dir)


@task(name="draw-online-accuracy", cache_policy=NO_CACHE)
def draw_online_accuracy_task(labelled: pd.DataFrame, out_dir: Path) -> Path | None:
    """Online accuracy per version over time, as a table (CSV) and a picture next to the other reports.

    None (and nothing written) when no prediction in the window has a label yet.
    """
    from monitoring.online_accuracy import PICTURE_NAME, accuracy_over_time, write_accuracy_picture

    table = accuracy_over_time(labelled)
    if table.empty:
        return None
    out = out_dir / PICTURE_NAME
    table.to_csv(out.with_suffix(".csv"), index=False)
    write_accuracy_picture(table, out)
    return out


@task(name="record-findings", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def record_findings_task(settings: Settings, findings: list[Finding], out_dir: Path) -> str:
    """Findings to the shared DB (for /metrics and the decision) and to MLflow (reports and pictures as artifacts)."""
    import mlflow

    s = settings
    engine = make_engine(s.prediction_log_uri)
    try:
        save_findings(engine, findings)
        try:  # this run and the ones before it, logged with the reports
            write_findings_picture(engine, out_dir)
        except (OSError, ValueError) as err:  # a picture is not worth a retry, which would save the findings twice
            print(f"findings-over-time picture not drawn: {err}")
    finally:
        engine.dispose()
    monitoring = s.model_copy(update={"experiment_name": f"{s.experiment_name}-monitoring"})
    with mlflow.start_run(experiment_id=ensure_experiment(monitoring), run_name=f"monitoring-{out_dir.name}") as run:
        mlflow.set_tags({f"status.{f.check}": f.status for f in findings})
        mlflow.log_metrics({f"{f.check}.score": f.score for f in findings if f.score is not None})
        mlflow.log_metrics({f"{f.check}.rows": float(f.rows) for f in findings})
        if out_dir.exists() and any(out_dir.iterdir()):
            mlflow.log_artifacts(str(out_dir), artifact_path="reports")
    return run.info.run_id


def monitoring_run_name() -> str:
    """The Prefect flow run's name: ``monitoring-check``, ``monitoring-dry-run`` or ``monitoring-<requested>``."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    return f"monitoring-{parameters.get('requested') or ('check' if parameters.get('retrain', True) else 'dry-run')}"


@flow(name="monitoring", log_prints=True, flow_run_name=monitoring_run_name)
def monitoring_flow(
    settings: Settings | None = None,
    params: Params | None = None,
    window: int | None = None,
    retrain: bool = True,
    requested: str | None = None,
) -> MonitoringOutcome:
    """One look at production; retrains (guarded) when a trigger fired or ``requested`` is manual/schedule.

    Args:
        settings, params: what to look at; a deployment's run passes neither (read from its environment).
        window: newest served predictions to check (default ``monitoring.window`` in params.yaml).
        retrain: False to only check and report (a dry run).
        requested: "manual" or "schedule" to retrain whatever the checks say.
    """
    tag_this_run("mlops-lab", "monitoring", "dry-run" if not retrain else f"requested:{requested or 'checks'}")
    ctx = flow_context(settings, params)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    out_dir = ctx.settings.reports_dir / f"check-{stamp}"
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = read_window_task(ctx.settings, ctx.params, window)
    findings = run_checks_task(inputs, ctx.params, out_dir)
    draw_online_accuracy_task(inputs.labelled, out_dir)  # before recording: MLflow keeps it with the reports
    run_id = record_findings_task(ctx.settings, findings, out_dir)
    create_table_artifact(key="monitoring-findings", table=findings_table(findings), description=inputs.reference.note)
    decision = decide({f.check: f for f in findings}, ctx.params.monitoring.retrain.triggers, requested)
    outcome = MonitoringOutcome(findings, decision, str(out_dir), run_id, notes=[inputs.reference.note])
    for f in findings:
        print(f"{f.check}: {f.status} - {f.summary}")
    print(f"decision: {'retrain' if decision.retrain else 'no retrain'} - {decision.reason}")
    if decision.retrain and retrain:
        outcome.retrain = retraining_flow(
            ctx.settings, ctx.params, trigger=",".join(decision.triggers), reason=decision.reason
        )
    markdown = [f"# Monitoring: {'retrain' if decision.retrain else 'no retrain'}", "", f"**Why:** {decision.reason}"]
    if outcome.retrain is not None:
        markdown += ["", f"**Retrain:** {outcome.retrain.status} - {outcome.retrain.reason}"]
    markdown += ["", f"Reports: `{out_dir}`", f"Reference: {inputs.reference.note}"]
    create_markdown_artifact(key="monitoring-decision", markdown="\n".join(markdown))
    return outcome
