"""CLI commands: `mlops-lab admin ...`, the admin API of a *running* service, over HTTP.

Concepts: runtime configuration (C27) behind API security (C44). `mlops-lab rollout` writes the shared
database directly, so it must run where that database is. These commands call a service's
``/v1/admin`` API instead: they work from any machine that can reach the service, pass the same
authentication and audit as any other client, and the worker that answers applies the change at
once (the others within ``poll_interval_s``).

The service is ``--url``, else ``MLOPS_API_URL`` (default ``http://127.0.0.1:8000``). The token is read
from ``MLOPS_ADMIN_TOKEN`` only -- deliberately no ``--token`` option: command-line arguments end up
in shell history and in ``ps`` for every user of the machine. The actor in the audit log is
``MLOPS_ACTOR`` (default: your user name), sent as ``X-Actor``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer

from cli.help import group_settings

admin_app = typer.Typer(**group_settings(), no_args_is_help=True)
rollout_app = typer.Typer(
    **group_settings(), help="Start, pause, resume or abort the canary rollout through the API.", no_args_is_help=True
)
admin_app.add_typer(rollout_app, name="rollout")
approval_app = typer.Typer(
    **group_settings(),
    help="Ask for or answer the challenger's approval (production mode: MLOPS_APPROVAL=required).",
    no_args_is_help=True,
)
admin_app.add_typer(approval_app, name="approval")
Reason = Annotated[str, typer.Option(help="Why (recorded in the audit log).")]


@admin_app.callback()
def options(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(help="Service base URL [default: $MLOPS_API_URL or :8000].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")] = False,
) -> None:
    """Operate a running service through its admin API (needs MLOPS_ADMIN_TOKEN)."""
    ctx.obj = {"url": url, "json": as_json}


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def call(ctx: typer.Context, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send one admin request; print and exit 1 on any refusal, with what to do about it."""
    import httpx

    from core.settings import Settings

    settings = Settings()
    base = (ctx.obj["url"] or settings.api_url).rstrip("/")
    personal = path.startswith("/approval/") and bool(settings.approver_token)
    if personal:  # the service knows who holds this token: it names the actor, X-Actor is not sent
        headers = {"Authorization": f"Bearer {settings.approver_token}"}
    elif not settings.admin_token:
        raise _fail("set MLOPS_ADMIN_TOKEN to the service's admin token (or MLOPS_APPROVER_TOKEN for approvals)")
    else:
        headers = {
            "Authorization": f"Bearer {settings.admin_token}",
            "X-Actor": re.sub(r"[^\w.@:-]", "_", settings.actor)[:100] or "cli",
        }
    try:
        response = httpx.request(method, f"{base}/v1/admin{path}", json=body, headers=headers, timeout=60.0)
    except httpx.HTTPError as err:
        raise _fail(f"cannot reach {base} ({err}); is `mlops-lab serve` running? set --url or MLOPS_API_URL") from err
    if response.status_code == 404:
        raise _fail(f"{base} has no admin API: the service must run with MLOPS_ADMIN_TOKEN set")
    try:
        answer: dict[str, Any] = response.json()
    except ValueError as err:
        raise _fail(f"{base} answered {response.status_code} with non-JSON: {response.text[:200]}") from err
    if response.status_code >= 400:
        raise _fail(f"{response.status_code}: {answer.get('error') or answer}")
    return answer


def show(ctx: typer.Context, answer: dict[str, Any]) -> None:
    """Print what happened and the state after it (or the raw JSON with --json)."""
    if ctx.obj["json"]:
        typer.echo(json.dumps(answer, indent=2))
        return
    if answer["message"]:
        typer.secho(answer["message"], bold=True)
    r, ro = answer["routing"], answer["rollout"]
    typer.echo(
        f"routing v{r['version']}: strategy {r['strategy']}, canary {100 * r['canary_weight']:g} %, "
        f"A/B {100 * r['ab_split']:g} %, active slot {r['active_slot']} ({r['slots'][r['active_slot']]})"
        + (", paused" if r["paused"] else "")
    )
    active = ro["status"] in ("running", "paused", "awaiting_approval")
    typer.echo(
        f"rollout: {ro['status']}" + (f" v{ro['challenger_version']} at {100 * ro['weight']:g} %" if active else "")
    )

    def versions(mapping: dict[str, str]) -> str:
        return ", ".join(f"{alias} v{version}" for alias, version in sorted(mapping.items())) or "none"

    typer.echo(f"registry aliases: {versions(answer['aliases'])}")
    approval = answer.get("approval") or {}
    if approval:
        typer.echo("approval: " + ", ".join(f"{key} {value}" for key, value in approval.items()))
    typer.echo(f"this worker serves: {versions(answer['loaded'])}")


@admin_app.command("state")
def state_cmd(ctx: typer.Context) -> None:
    """Show routing, rollout, registry aliases and the models the answering worker serves."""
    show(ctx, call(ctx, "GET", "/state"))


@admin_app.command("strategy")
def strategy_cmd(
    ctx: typer.Context, strategy: Annotated[str, typer.Argument(help="canary | blue_green | shadow | ab | bandit")]
) -> None:
    """Switch the routing strategy, live."""
    show(ctx, call(ctx, "PUT", "/strategy", {"strategy": strategy}))


@admin_app.command("weights")
def weights_cmd(
    ctx: typer.Context,
    canary: Annotated[float | None, typer.Option(help="Challenger share under canary, 0-1.")] = None,
    ab: Annotated[float | None, typer.Option(help="Challenger share under A/B, 0-1.")] = None,
) -> None:
    """Set the canary weight and/or the A/B split."""
    body = {k: v for k, v in {"canary_weight": canary, "ab_split": ab}.items() if v is not None}
    show(ctx, call(ctx, "PUT", "/weights", body))


@admin_app.command("switch")
def switch_cmd(ctx: typer.Context) -> None:
    """Blue-green: make the idle slot active (run again to switch back)."""
    show(ctx, call(ctx, "POST", "/blue-green/switch"))


@admin_app.command("promote")
def promote_cmd(ctx: typer.Context, reason: Reason) -> None:
    """champion <- challenger; the old champion is kept as `previous`."""
    show(ctx, call(ctx, "POST", "/promote", {"reason": reason}))


@admin_app.command("rollback")
def rollback_cmd(ctx: typer.Context, reason: Reason) -> None:
    """champion <- previous."""
    show(ctx, call(ctx, "POST", "/rollback", {"reason": reason}))


@rollout_app.command("start")
def rollout_start_cmd(ctx: typer.Context) -> None:
    """Start a canary of the current challenger."""
    show(ctx, call(ctx, "POST", "/rollout/start"))


@rollout_app.command("pause")
def rollout_pause_cmd(ctx: typer.Context, reason: Reason) -> None:
    """Hold the current weight."""
    show(ctx, call(ctx, "POST", "/rollout/pause", {"reason": reason}))


@rollout_app.command("resume")
def rollout_resume_cmd(ctx: typer.Context, reason: Reason) -> None:
    """Let a paused rollout step again."""
    show(ctx, call(ctx, "POST", "/rollout/resume", {"reason": reason}))


@rollout_app.command("abort")
def rollout_abort_cmd(ctx: typer.Context, reason: Reason) -> None:
    """Weight back to 0; the challenger is marked rejected."""
    show(ctx, call(ctx, "POST", "/rollout/abort", {"reason": reason}))


@approval_app.command("request")
def approval_request_cmd(ctx: typer.Context, reason: Reason) -> None:
    """Ask for the challenger's approval; someone other than you (MLOPS_ACTOR) answers."""
    show(ctx, call(ctx, "POST", "/approval/request", {"reason": reason}))


@approval_app.command("approve")
def approval_approve_cmd(ctx: typer.Context, reason: Reason) -> None:
    """Approve the pending challenger (not your own request): it is promoted, its canary finished."""
    show(ctx, call(ctx, "POST", "/approval/approve", {"reason": reason}))


@approval_app.command("reject")
def approval_reject_cmd(ctx: typer.Context, reason: Reason) -> None:
    """Reject the challenger: its canary is aborted (weight 0) and it never goes out again."""
    show(ctx, call(ctx, "POST", "/approval/reject", {"reason": reason}))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.add_typer(admin_app, name="admin")
