"""CLI command ``mlops-lab shadow report``: the shadow's online accuracy next to the champion's.

Thin shell over monitoring/shadow_report.py: reads the prediction log (``Settings.prediction_log_uri``),
pairs each served row of strategy ``shadow`` with its mirrored answer and its label, and prints both
accuracies on the same labelled rows, McNemar's exact test and the two latencies with what they mean.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from cli.help import group_settings

shadow_app = typer.Typer(
    **group_settings(), help="Shadow deployment: how the mirrored model would have done.", no_args_is_help=True
)


@shadow_app.command("report")
def report_cmd(
    hours: Annotated[
        float | None, typer.Option(min=0, help="Only predictions of the last N hours (default: the whole log).")
    ] = None,
) -> None:
    """Champion and shadow accuracy on the same labelled requests, with a paired test and their latencies."""
    from core.context import load_context
    from monitoring.shadow_report import render, shadow_report

    ctx = load_context()
    since = datetime.now(UTC) - timedelta(hours=hours) if hours is not None else None
    comparisons = shadow_report(ctx.settings.prediction_log_uri, since=since, model_name=ctx.settings.model_name)
    for line in render(comparisons):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.add_typer(shadow_app, name="shadow")
