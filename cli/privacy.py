"""CLI commands: `mlops-lab privacy erase | retention | audit`, the personal data's life cycle.

Concept: data privacy (C59). Thin shells over ``monitoring/privacy.py`` and ``flows/retention_flow.py``.
``erase`` is destructive, so it is guarded like ``reset``: it asks first (``--yes`` to skip), and it only
works with the service's key secret (``MLOPS_USER_KEY_SECRET``, else ``MLOPS_FEEDBACK_KEY`` or
``MLOPS_ADMIN_TOKEN``): without it no one can tell which rows are the user's. The actor
(``MLOPS_ACTOR``) is recorded in the privacy audit log with the counts, never the user id.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from cli.confirm import confirm_or_exit
from cli.help import group_settings
from core.exit_codes import EXIT_FAILED

console = Console()
privacy_app = typer.Typer(
    **group_settings(), help="Personal data: erase a user, apply the retention, read the audit.", no_args_is_help=True
)
RETENTION_DEPLOYMENT = "daily"


@privacy_app.command("erase")
def erase(
    user: Annotated[str, typer.Option("--user", help="The user id the service received as X-User-Id.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete one person's predictions, labels and the reports built from them; say what is out of reach."""
    from core.settings import Settings
    from core.startup import configure_runtime
    from monitoring.privacy import UNREACHABLE, ErasureRefusedError, erase, keys_of

    settings = Settings()
    configure_runtime(settings)
    try:
        keys_of(settings)  # refuse before asking: without the secret there is nothing to confirm
    except ErasureRefusedError as err:
        console.print(f"[bold red]refused:[/bold red] {escape(str(err))}")
        raise typer.Exit(EXIT_FAILED) from None
    if not yes:
        confirm_or_exit(console, "Delete this user's rows, labels and the reports made since?", "nothing erased")
    try:
        removed = erase(settings, user)
    except ErasureRefusedError as err:
        console.print(f"[bold red]refused:[/bold red] {escape(str(err))}")
        raise typer.Exit(EXIT_FAILED) from None
    console.print(f"[bold green]erased[/bold green] {escape(removed.summary())}")
    if not removed.checkpointed:
        console.print("[yellow]the database log is still held by a reader: run again later to zero it on disk[/yellow]")
    console.print("recorded in the privacy audit log (counts, time, actor; not the user id)")
    console.print("out of reach of this command, and how each is handled:")
    for store, handling in UNREACHABLE:
        console.print(f"  - {escape(store)}: {escape(handling)}")


@privacy_app.command("retention")
def retention(
    days: Annotated[int | None, typer.Option(min=1, help="Days to keep [default: MLOPS_RETENTION_DAYS].")] = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="Serve the flow as a deployment on MLOPS_RETENTION_SCHEDULE (blocks).")
    ] = False,
) -> None:
    """Delete prediction and feedback rows, and monitoring reports, older than the retention (Prefect flow)."""
    from core.settings import Settings
    from core.startup import configure_runtime
    from flows.retention_flow import retention_flow

    settings = Settings()
    configure_runtime(settings)
    if serve:
        from prefect import serve as prefect_serve

        console.print(f"serving flow `retention` as deployment `{RETENTION_DEPLOYMENT}` on cron "
                      f"`{settings.retention_schedule}`; stop with Ctrl-C")  # fmt: skip
        deployment: Any = retention_flow.to_deployment(
            name=RETENTION_DEPLOYMENT,
            cron=settings.retention_schedule,
            parameters={"days": days},
            description="Delete personal data past the retention: prediction and feedback rows, reports.",
        )
        prefect_serve(deployment)
        return
    removed = retention_flow(settings, days=days)
    console.print(removed.summary())


@privacy_app.command("audit")
def audit() -> None:
    """The privacy audit log: each retention and erasure run, with counts (never whose rows)."""
    from core.settings import Settings
    from monitoring.privacy import audit_entries

    for entry in audit_entries(Settings().state):
        console.print(
            f"{entry['ts']}  {entry['action']:<9}  {entry['actor']}  predictions {entry['predictions']}  "
            f"feedback {entry['feedback']}  reports {entry['reports']}"
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.add_typer(privacy_app, name="privacy")
