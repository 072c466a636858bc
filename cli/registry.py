"""CLI commands: ``registry list | promote | rollback | request-approval | approve | reject | audit | delivery``.

Concepts: model registry (C12), rollback (C15), governance (C16). A thin shell over
``pipelines/registry.py``: every command reads settings, calls one core function and prints the
result. The acting user (``MLOPS_ACTOR``, default the login name) and ``--reason`` go into the
registry's audit log, so "who rolled back production, and why?" always has an answer, and
``delivery`` turns that log into DORA-style delivery figures (``pipelines/delivery_metrics.py``).
Expected failures (no challenger, nothing to roll back to, a self-approval) end with a one-line message
and exit code 1, never a traceback. In production mode (``MLOPS_APPROVAL=required``, C60) ``promote``
refuses a challenger nobody approved: one person runs ``request-approval``, another ``approve`` (which
promotes) or ``reject``. ``approve`` goes the admin API's way, through
``serving.rollout_controller.answer_approval`` (the registry cannot see the rollout, which lives in the
shared database): refused while a canary of the challenger is still stepping, and a canary awaiting the
approval is finished at once. ``audit`` prints the trail at 80 columns, or as JSON lines with ``--json``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.help import group_settings
from pipelines.registry import (
    RegistryError,
    audit_log,
    current_aliases,
    list_versions,
    promote,
    request_approval,
    rollback,
)

if TYPE_CHECKING:
    from core.settings import Settings
    from pipelines.registry import AliasChange
    from serving.rollout_controller import Tick

registry_app = typer.Typer(
    **group_settings(),
    help="Model registry: list versions, promote, roll back, read the audit log and its delivery figures.",
    no_args_is_help=True,
)


def _settings() -> Settings:
    from core.settings import Settings
    from core.startup import configure_runtime

    settings = Settings()
    configure_runtime(settings)
    return settings


def _fail(err: Exception) -> NoReturn:
    Console(stderr=True).print(f"[bold red]error:[/bold red] {err}")
    raise typer.Exit(code=1)


def _v(version: str | None) -> str:
    return f"v{version}" if version else "-"


def _print_change(change: AliasChange, settings: Settings) -> None:

    console = Console()
    console.print(
        f"[green]✔[/green] {change.action}: champion {_v(change.champion_before)} → {_v(change.champion_after)}"
    )
    aliases = current_aliases(settings)
    console.print("aliases now: " + ", ".join(f"{a}=v{v}" for a, v in sorted(aliases.items())))


@registry_app.command("list")
def list_cmd() -> None:
    """Show every registered version with its aliases, status and held-out accuracy."""
    settings = _settings()
    versions = list_versions(settings)
    if not versions:
        Console().print(f"no versions of {settings.model_name!r} registered yet; run `mlops-lab train` first")
        return
    table = Table(title=f"{settings.model_name} versions", title_justify="left")
    for column in ("version", "aliases", "status", "approval", "accuracy", "run", "created"):
        table.add_column(column)
    for v in versions:
        accuracy = "-" if v.accuracy is None else f"{v.accuracy:.3f}"
        created = v.created.replace("T", " ")[:16]
        cells = (v.version, ", ".join(v.aliases) or "-", v.status or "-", v.approval or "-", accuracy)
        table.add_row(*cells, v.run_id[:8], created)
    Console().print(table)
    Console().print(f"approval mode: {settings.approval} (MLOPS_APPROVAL)")


@registry_app.command("promote")
def promote_cmd(
    reason: Annotated[str, typer.Option(help="Why; recorded in the audit log.")] = "manual promotion (CLI)",
) -> None:
    """Make the challenger the champion; the old champion becomes `previous`."""
    settings = _settings()
    try:
        change = promote(settings, settings.actor, reason)
    except RegistryError as err:
        _fail(err)
    _print_change(change, settings)


@registry_app.command("rollback")
def rollback_cmd(
    reason: Annotated[str, typer.Option(help="Why; recorded in the audit log.")] = "manual rollback (CLI)",
) -> None:
    """Restore the previous champion (an alias move: instant, nothing rebuilt)."""
    settings = _settings()
    try:
        change = rollback(settings, settings.actor, reason)
    except RegistryError as err:
        _fail(err)
    _print_change(change, settings)


@registry_app.command("request-approval")
def request_approval_cmd(
    reason: Annotated[str, typer.Option(help="Why it should go out; recorded in the audit log.")] = "ready for review",
) -> None:
    """Ask for the challenger's approval (production mode); someone other than you approves it."""
    settings = _settings()
    try:
        version = request_approval(settings, settings.actor, reason)
    except RegistryError as err:
        _fail(err)
    Console().print(f"[green]✔[/green] approval of v{version} requested by {escape(settings.actor)}")


def _answer(decision: Literal["approve", "reject"], reason: str) -> tuple[Tick, str]:
    """The admin API's own path for a person's answer: refused while a canary of the challenger is still stepping
    (approve), and a running canary is aborted (reject); exits with the reason when refused.

    Returns the controller's tick and the rollout's status before the answer.
    """
    import sqlalchemy as sa

    from core.params import load_params
    from serving.rollout import RolloutTransitionError
    from serving.rollout_controller import answer_approval
    from serving.state_store import StateConflictError, StateStore

    settings = _settings()
    try:
        store = StateStore(settings.prediction_log_uri, load_params(settings.params_path).routing)
        try:
            before = store.rollout().status
            return answer_approval(settings, store, decision, settings.actor, reason), before
        finally:
            store.close()
    except (RegistryError, RolloutTransitionError, StateConflictError) as err:
        _fail(err)
    except sa.exc.OperationalError as err:
        _fail(RuntimeError(f"the shared database is unreachable ({type(err).__name__}): whether a canary is still "
                           f"stepping is unknown, so nothing was {decision}d"))  # fmt: skip


@registry_app.command("approve")
def approve_cmd(
    reason: Annotated[str, typer.Option(help="Why; recorded in the audit log.")] = "approved (CLI)",
) -> None:
    """Approve the pending challenger (not your own request) and promote it; a canary awaiting it finishes."""
    settings = _settings()
    before = current_aliases(settings).get("champion")
    tick, rollout_before = _answer("approve", reason)
    aliases = current_aliases(settings)
    console = Console()
    console.print(f"[green]✔[/green] approve: champion {_v(before)} → {_v(aliases.get('champion'))}")
    if rollout_before == "awaiting_approval" and tick.state.status == "promoted":
        console.print(f"the canary of v{tick.state.challenger_version} that awaited it is finished (weight 0)")
    console.print("aliases now: " + ", ".join(f"{a}=v{v}" for a, v in sorted(aliases.items())))


@registry_app.command("reject")
def reject_cmd(reason: Annotated[str, typer.Option(help="Why; recorded in the audit log and on the version.")]) -> None:
    """Reject the challenger (answers a pending approval request); it never goes out again, a canary of it stops."""
    settings = _settings()
    from serving.rollout import ACTIVE

    tick, rollout_before = _answer("reject", reason)
    Console().print(f"[green]✔[/green] challenger rejected by {escape(settings.actor)}: {escape(tick.action.reason)}")
    if rollout_before in ACTIVE and tick.state.status == "aborted":
        Console().print(f"the canary of v{tick.state.challenger_version} is aborted (weight 0)")


@registry_app.command("audit")
def audit_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per entry, as stored.")] = False,
) -> None:
    """Show who moved which alias, when and why (oldest first), at 80 columns."""
    import json
    from dataclasses import asdict

    from pipelines.audit_report import compact_lines

    settings = _settings()
    entries = audit_log(settings)
    if as_json:
        for e in entries:
            typer.echo(json.dumps(asdict(e)))
        return
    if not entries:
        typer.echo(f"no audit entries for {settings.model_name!r} yet")
        return
    typer.echo(f"{settings.model_name} audit log ({len(entries)} entries, oldest first)"[:80])
    for line in compact_lines(entries):
        typer.echo(line)


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.2f} h"


def _retrain_alarms(settings: Settings) -> list[datetime]:
    """When a retraining trigger (``monitoring.retrain.triggers``) fired, from the findings history."""
    import sqlalchemy as sa

    from core.findings import finding_history
    from core.params import load_params
    from serving.log_schema import make_engine

    triggers = set(load_params(settings.params_path).monitoring.retrain.triggers)
    engine = make_engine(settings.prediction_log_uri)
    try:
        history = finding_history(engine, limit=100_000)
    except sa.exc.OperationalError as err:  # the shared database is down: the audit log still answers
        Console(stderr=True).print(
            f"[yellow]findings history unreadable ({type(err).__name__}); lead times count from registration[/yellow]"
        )
        return []
    finally:
        engine.dispose()
    return [datetime.fromisoformat(f.ts) for f in history if f.fired and f.check in triggers]


@registry_app.command("delivery")
def delivery_cmd() -> None:
    """Delivery figures from the audit log: deployment frequency, lead time, change-failure rate, time to restore."""
    from pipelines.delivery_metrics import delivery_metrics

    settings = _settings()
    entries = audit_log(settings)
    if not entries:
        Console().print(f"no audit entries for {settings.model_name!r} yet; nothing has been released")
        return
    m = delivery_metrics(entries, _retrain_alarms(settings), now=datetime.now(UTC))
    table = Table(title=f"{settings.model_name} delivery (audit log, {m.window_days:.2f} days)", title_justify="left")
    for column in ("figure", "value", "from"):
        table.add_column(column)
    per_day = "-" if m.per_day is None else f"{m.per_day:.2f}/day, {m.per_week:.1f}/week"
    table.add_row("deployment frequency", per_day, f"{m.deployments} deployments (first champion + promotions)")
    leads = ", ".join(f"v{t.version} {_hours(t.seconds)} since {t.since}" for t in m.lead_times) or "no promotions"
    table.add_row("lead time (median)", _hours(m.median_lead_time_s), leads)
    cfr = "-" if m.change_failure_rate is None else f"{m.change_failure_rate:.0%}"
    table.add_row("change-failure rate", cfr, f"{m.aborts} aborted + {m.rollbacks} rolled back of {m.attempts} changes")
    restores = ", ".join(f"v{r.version} {r.kind} {_hours(r.seconds)}" for r in m.restores) or "no failed changes"
    table.add_row("time to restore (median)", _hours(m.median_restore_s), restores)
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add the ``registry`` command group to the CLI."""
    app.add_typer(registry_app, name="registry")
