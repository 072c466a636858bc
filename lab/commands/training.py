"""CLI commands: train, reproduce, and the DVC stage entry points.

Thin shells: parse options, call pipelines/*, print a readable result, pick an exit code
(0 registered or reproduced, 1 invalid data or not reproducible, 3 rejected by the quality gate).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from pipelines.training import TrainingOutcome

console = Console()
EXIT_INVALID_DATA = 1
EXIT_GATE_REJECTED = 3


def print_outcome(outcome: TrainingOutcome, out: Console = console) -> None:
    """Readable summary of one training run (shared by the CLI and the demos)."""
    from rich.table import Table

    colour = "green" if outcome.status == "registered" else "red"
    out.print(f"[bold {colour}]{outcome.status}[/bold {colour}]  run {outcome.run_id}")
    if outcome.version:
        out.print(f"registered version [bold]{outcome.version}[/bold] as alias [bold]{outcome.alias}[/bold]")
    table = Table("metric", "candidate", "champion", title="held-out test set", title_justify="left")
    champion = outcome.champion_metrics or {}
    for key in ("accuracy", "f1_macro", "log_loss"):
        table.add_row(key, f"{outcome.metrics[f'test_{key}']:.4f}", f"{champion[key]:.4f}" if key in champion else "-")
    table.add_row("cv_accuracy_mean", f"{outcome.metrics['cv_accuracy_mean']:.4f}", "-")
    out.print(table)
    for reason in outcome.gate.get("reasons", []):
        out.print(f"  gate: {reason}")


def train(
    data: Annotated[Path | None, typer.Option(help="Training CSV (default: dataset.path in params.yaml).")] = None,
    sweep: Annotated[bool, typer.Option(help="Run the train.sweep grid as nested MLflow runs; best CV wins.")] = False,
) -> None:
    """Validate → train → gate → register, as the Prefect `training` flow (local API, no server needed)."""
    from core.context import load_context

    load_context()
    from pipelines.flows import training_flow
    from pipelines.validation import DataValidationError

    try:
        outcome = training_flow(data_path=str(data) if data else None, sweep=sweep)
    except DataValidationError as err:
        console.print("[bold red]invalid data: nothing was trained or registered[/bold red]")
        console.print(err.result.summary())
        raise typer.Exit(EXIT_INVALID_DATA) from err
    except FileNotFoundError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(EXIT_INVALID_DATA) from err
    print_outcome(outcome)
    if outcome.status != "registered":
        raise typer.Exit(EXIT_GATE_REJECTED)


def reproduce(version: Annotated[str, typer.Argument(help="Registered model version to rebuild.")]) -> None:
    """Rebuild a registered version from its lineage and show metrics and predictions are identical."""
    from rich.table import Table

    from core.context import load_context
    from pipelines.reproduce import ReproductionError, record_reproduction, reproduce_version

    ctx = load_context()
    try:
        report = reproduce_version(ctx.settings, version)
    except ReproductionError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from err
    verdict = record_reproduction(ctx.settings, report, ctx.settings.actor)
    console.print(f"version {report.version}  run {report.run_id}  git {report.git_sha[:12]}")
    console.print(f"data {report.data_path} (md5 {report.data_md5})")
    table = Table("metric", "logged", "rebuilt", "equal", title_justify="left")
    for key, logged in sorted(report.logged_metrics.items()):
        rebuilt = report.rebuilt_metrics.get(key, float("nan"))
        table.add_row(key, repr(logged), repr(rebuilt), "yes" if rebuilt == logged else "[red]NO[/red]")
    console.print(table)
    console.print(f"max |Δ probability| on the test set: {report.max_probability_diff!r}")
    for name, (then, now) in report.library_drift.items():
        console.print(f"[yellow]library {name}: logged {then}, now {now}[/yellow]")
    if not report.identical:
        console.print("[bold red]NOT reproduced[/bold red] (recorded on the version as reproduced=different)")
        raise typer.Exit(1)
    console.print("[bold green]reproduced: identical metrics and predictions[/bold green]")
    console.print(
        f"[dim]recorded on version {report.version}: {', '.join(f'{k}={v}' for k, v in verdict.items())}[/dim]"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("train")(train)
    app.command("reproduce")(reproduce)
