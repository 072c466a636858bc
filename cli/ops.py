"""CLI commands: `mlops-lab backup`, `restore` and `reset`: the local state's life cycle.

Concept: disaster recovery (C50). Thin shells over ``ops/backup.py`` and ``ops/restore.py``: they
resolve the state from the settings, call the core, print what was copied or restored and exit
non-zero (1) on any refusal, so a cron job or a runbook step can gate on them. ``restore`` ends by
loading the restored champion as a serving replica would (the safe loader: a planted pickle never runs).
``reset`` (``ops/reset.py``) removes the state folder between workshop groups, after showing what goes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from cli.confirm import confirm_or_exit
from core.exit_codes import EXIT_FAILED

console = Console()


def backup(
    out: Annotated[Path | None, typer.Option(help="Folder for the archive [default: <project>/backups].")] = None,
) -> None:
    """Archive the registry DB, MLflow artifacts, prediction log and DVC cache, with a signed, checksummed manifest."""
    from rich.table import Table

    from core.context import load_context
    from ops.backup import BackupError, backup, component_rows, counts, human_size

    ctx = load_context()
    try:
        result = backup(ctx.settings, out or ctx.settings.project_dir / "backups")
    except BackupError as err:
        console.print(f"[red]{escape(str(err))}[/red]")
        raise typer.Exit(EXIT_FAILED) from err
    table = Table("component", "member", "files", "size", title_justify="left")
    for row in component_rows(result.manifest):
        table.add_row(*row)
    console.print(table)
    m = result.manifest
    console.print(f"champion v{m['registry']['champion']}, prediction log: {counts(m['prediction_log'])}")
    console.print(f"wrote [bold]{escape(str(result.archive))}[/bold] ({human_size(result.archive.stat().st_size)})")
    console.print(f"manifest signed with backup key {result.key.key_id} ({escape(result.key.source)})")
    if result.key.created:
        console.print(
            "[yellow]a new backup key was created: keep a copy off this machine, apart from the backups; "
            "a restore needs it (MLOPS_BACKUP_KEY or MLOPS_BACKUP_KEY_FILE)[/yellow]"
        )


def restore(
    archive: Annotated[Path, typer.Argument(help="A backup archive written by `mlops-lab backup`.")],
    force: Annotated[bool, typer.Option(help="Replace existing state (refused without it).")] = False,
) -> None:
    """Check a backup's signature and checksums, then restore it (existing state needs --force, services stopped)."""
    from core.context import load_context
    from ops.backup import BackupError, counts
    from ops.restore import load_champion, restore

    ctx = load_context()
    try:
        result = restore(archive.resolve(), ctx.settings, force=force)
        version, _model = load_champion(ctx.settings)
    except BackupError as err:
        console.print(f"[red]{escape(str(err))}[/red]")
        raise typer.Exit(EXIT_FAILED) from err
    m = result.manifest
    console.print(f"verified {len(m['files'])} members against the manifest of {m['created_at']}")
    console.print(f"restored {', '.join(result.installed)} into [bold]{escape(str(result.state))}[/bold]")
    if result.replaced:
        console.print(f"replaced existing state: {escape(', '.join(result.replaced))}")
    if result.relocated_uris:
        console.print(f"moved {result.relocated_uris} MLflow artifact URIs to this state's artifact root")
    if result.dvc_objects_added:
        console.print(f"added {result.dvc_objects_added} objects to the DVC cache")
    console.print(f"prediction log: {counts(result.rows)}, as in the manifest")
    console.print(f"[bold green]champion v{version} loads from the restored registry[/bold green]")


def reset(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove the local state folder (registry, artifacts, prediction log, reports): a clean start."""
    from core.settings import Settings
    from ops.backup import human_size
    from ops.reset import ResetRefusedError, apply_reset, plan_reset

    try:
        plan = plan_reset(Settings())
    except ResetRefusedError as err:
        console.print(f"[bold red]refused:[/bold red] {escape(str(err))}")
        raise typer.Exit(EXIT_FAILED) from None
    for store in plan.kept:
        console.print(f"not touched (outside the state folder): {escape(store)}")
    if not plan.entries:
        console.print(f"{escape(str(plan.state))} is already empty: nothing to reset")
        return
    console.print(f"[bold]{escape(str(plan.state))}[/bold] holds {human_size(plan.total_bytes)}:")
    for entry in plan.entries:
        console.print(f"  {escape(entry.name)}  {human_size(entry.bytes)}")
    if not yes:
        confirm_or_exit(console, "Remove all of it? Stop any running `mlops-lab serve` first", "nothing removed")
    try:
        apply_reset(plan)
    except ResetRefusedError as err:
        console.print(f"[bold red]refused:[/bold red] {escape(str(err))}")
        raise typer.Exit(EXIT_FAILED) from None
    console.print(f"[bold green]removed {escape(str(plan.state))}[/bold green]: the next command starts fresh")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("backup")(backup)
    app.command("restore")(restore)
    app.command("reset")(reset)
