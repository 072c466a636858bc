"""CLI commands: train, reproduce, and the DVC stage entry points.

Thin shells: parse options, call pipelines/*, print a readable result, pick an exit code
(0 registered or reproduced, 1 invalid data or not reproducible, 3 rejected by the quality gate).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from core.exit_codes import EXIT_GATE_REJECTED, EXIT_INVALID_DATA
from pipelines.data_errors import DataFileError
from pipelines.training_report import print_outcome
from pipelines.validation import DataValidationError

if TYPE_CHECKING:
    pass

console = Console()


def train(
    data: Annotated[Path | None, typer.Option(help="Training CSV (default: dataset.path in params.yaml).")] = None,
    search: Annotated[
        bool, typer.Option(help="Optuna search over train.search.space (nested MLflow runs); best CV mean wins.")
    ] = False,
    trials: Annotated[
        int | None, typer.Option(min=1, help="Trials of the search (default: train.search.trials).")
    ] = None,
) -> None:
    """Validate → train → gate → register, as the Prefect `training` flow (local API, no server needed)."""
    from core.context import load_context
    from core.params import with_search_trials
    from core.quiet_refusals import quiet_refusals
    from pipelines.training_flow import training_flow

    if trials is not None and not search:
        raise typer.BadParameter("--trials sets the search's trials: use it with --search", param_hint="--trials")
    ctx = load_context()
    params = ctx.params if trials is None else with_search_trials(ctx.params, trials)
    try:
        with (
            quiet_refusals(
                DataValidationError, FileNotFoundError, DataFileError
            ),  # explained below, once, without a traceback
            console.status("training: load → validate → train → gate → register (Prefect flow `training`)"),
        ):  # the spinner shows on a terminal only; logs and CI output stay as they are
            outcome = training_flow(ctx.settings, params, data_path=str(data) if data else None, search=search)
    except DataValidationError as err:
        console.print("[bold red]invalid data: nothing was trained or registered[/bold red]")
        console.print(err.result.summary())
        raise typer.Exit(EXIT_INVALID_DATA) from err
    except (FileNotFoundError, DataFileError) as err:  # missing, not UTF-8, not a table, empty: one refusal
        console.print("[bold red]cannot read the data: nothing was trained or registered[/bold red]")
        console.print(escape(str(err)), soft_wrap=True)
        raise typer.Exit(EXIT_INVALID_DATA) from None
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
