"""CLI command ``mlops-lab monitor``: one look at production now, or the scheduled deployment.

Thin shell over the Prefect flow ``monitoring`` (flows/monitoring_flow.py). Exit codes: 0 nothing
fired, 2 a check fired (whatever the retrain did), so a cron job or a CI step can branch on it; 1 the
prediction log could not be reached (its password redacted) or the reference data is missing: said in two
lines, nothing checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from core.exit_codes import EXIT_FAILED, EXIT_FIRED

if TYPE_CHECKING:
    from core.params import Params

console = Console()
DEPLOYMENT = "scheduled"
RETRAIN_DEPLOYMENT = "scheduled-retrain"


def scheduled_deployments(params: Params) -> list[Any]:
    """The monitoring flow as deployments (not yet served): a check on ``monitoring.schedule``, and a periodic
    retrain on ``monitoring.retrain.schedule`` when that is set (the same flow with ``requested="schedule"``)."""
    from flows.monitoring_flow import monitoring_flow

    deployments = [
        monitoring_flow.to_deployment(
            name=DEPLOYMENT,
            cron=params.monitoring.schedule,
            parameters={"requested": None},
            description="Scheduled look at production: drift and decay checks, guarded retrain on a trigger.",
        )
    ]
    if params.monitoring.retrain.schedule:
        deployments.append(
            monitoring_flow.to_deployment(
                name=RETRAIN_DEPLOYMENT,
                cron=params.monitoring.retrain.schedule,
                parameters={"requested": "schedule"},
                description="Periodic retrain whatever the checks say; still guarded, gated and canaried.",
            )
        )
    return deployments


def monitor(
    window: Annotated[
        int | None, typer.Option(min=1, help="Newest predictions to check (default monitoring.window).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report only; never retrain.")] = False,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Retrain now (manual trigger), whatever the checks say.")
    ] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="Serve the flow as a deployment on monitoring.schedule (blocks).")
    ] = False,
) -> None:
    """Drift and decay checks on the newest traffic; a fired trigger starts a guarded retrain → canary."""
    from core.context import load_context
    from flows.monitoring_outcome import print_monitoring

    ctx = load_context()
    if serve:
        from prefect import serve as prefect_serve

        console.print(
            f"serving flow `monitoring` as deployment `{DEPLOYMENT}` on cron `{ctx.params.monitoring.schedule}`"
        )
        console.print("runs appear in the Prefect UI; stop with Ctrl-C")
        prefect_serve(*scheduled_deployments(ctx.params))
        return
    from sqlalchemy.exc import OperationalError

    from core.quiet_refusals import quiet_refusals
    from core.redact import redact
    from flows.monitoring_flow import monitoring_flow

    try:
        with (
            quiet_refusals(OperationalError, FileNotFoundError),  # explained below in two lines, not in tracebacks
            console.status("monitoring: every drift and decay check, then the decision (Prefect flow `monitoring`)"),
        ):  # the spinner shows on a terminal only
            outcome = monitoring_flow(
                ctx.settings, ctx.params, window=window, retrain=not dry_run, requested="manual" if retrain else None
            )
    except OperationalError as err:
        reason = str(err.orig or err).strip().splitlines()[0]
        where = redact(ctx.settings.prediction_log_uri)
        console.print(
            f"[bold red]the prediction log cannot be reached[/bold red] at {escape(where)}: {escape(redact(reason))}"
        )
        console.print("nothing was checked; start the database or point MLOPS_PREDICTION_LOG_URL at it")
        raise typer.Exit(EXIT_FAILED) from err
    except FileNotFoundError as err:  # no champion yet, and the reference data was never ingested
        console.print(f"[bold red]{escape(str(err))}[/bold red]")
        console.print("nothing was checked; run `mlops-lab ingest` (the reference data) or train a champion first")
        raise typer.Exit(EXIT_FAILED) from err
    print_monitoring(outcome)
    if any(f.fired for f in outcome.findings):
        raise typer.Exit(EXIT_FIRED)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("monitor")(monitor)
