"""CLI commands: the canary rollout controller (`mlops-lab rollout ...`).

Thin shells over serving/rollout_controller.py. State lives in the shared database, so `run` can be
stopped and started again, and `status` / `pause` / `abort` work from any shell or replica.
`run --prefect` runs the same loop as the Prefect flow `rollout` (flows/rollout_flow.py).
`run --watch` is the deployed controller (serving/rollout_watch.py): it never returns on its own, waits
while no rollout is in progress, retries through outages and stops on SIGTERM after the current tick;
`heartbeat` is its liveness / readiness probe.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from cli.help import group_settings
from pipelines.registry import RegistryError
from serving.rollout_picture import PICTURE_NAME

if TYPE_CHECKING:
    import sqlalchemy as sa

    from core.context import LabContext
    from serving.rollout_controller import Tick
    from serving.state_store import StateStore

console = Console()
rollout_app = typer.Typer(
    **group_settings(),
    help="Canary rollout: start, watch, step, pause, resume, abort.",
    no_args_is_help=True,
)


def _parts() -> tuple[LabContext, StateStore, sa.Engine]:
    """The command's context (settings read from the environment here, the edge), store and log engine."""
    from core.context import load_context
    from serving.rollout_controller import controller_parts

    ctx = load_context()
    return (ctx, *controller_parts(ctx.settings, ctx.params))


def _show(tick: Tick) -> None:
    state, action, analysis = tick.state, tick.action, tick.analysis
    console.print(f"rollout [bold]{state.status}[/bold]  weight {100 * state.weight:g} %  v{state.challenger_version}")
    reason = action.reason
    if analysis is not None:
        console.print(f"analysis: {analysis.summary()}")
        # The action's reason quotes the analysis in full (it is what the history keeps): say it once here.
        reason = reason.replace(f": {analysis.summary()}", "").replace(analysis.summary(), "").strip()
    console.print(f"action: [bold]{action.kind}[/bold]  {reason}")


@rollout_app.command("start")
def start_cmd() -> None:
    """Start a canary for the current challenger at the first step of rollout.steps."""
    from serving.rollout import RolloutTransitionError
    from serving.rollout_controller import begin_rollout

    ctx, store, _ = _parts()
    try:
        _show(begin_rollout(ctx.settings, ctx.params, store, actor=ctx.settings.actor))
    except (RegistryError, RolloutTransitionError) as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from err


@rollout_app.command("status")
def status_cmd(
    picture: Annotated[
        Path | None, typer.Option(help=f"Where to draw the weight steps (default: reports/rollout/{PICTURE_NAME}).")
    ] = None,
) -> None:
    """Show the rollout state and its history, and draw its weight steps and verdicts as a PNG."""
    from serving.rollout_picture import write_rollout_picture

    ctx, store, _engine = _parts()
    state = store.rollout()
    routing = store.routing()
    console.print(f"rollout [bold]{state.status}[/bold]  challenger v{state.challenger_version}")
    console.print(f"routing: strategy {routing.strategy}, canary weight {100 * routing.canary_weight:g} %")
    for event in state.history[-10:]:
        console.print(f"  {event.at:%H:%M:%S} {event.event:<8} {100 * event.weight:g} %  {event.reason}")
    if state.history:
        out = picture or ctx.settings.reports_dir / "rollout" / PICTURE_NAME
        try:
            write_rollout_picture(state, out)
        except OSError as err:  # a read-only reports folder must not hide the status printed above
            console.print(f"[yellow]could not draw the picture to {escape(str(out))}: {escape(str(err))}[/yellow]")
            console.print("  give a writable file with --picture PATH")
            return
        console.print(f"picture (weight steps and verdicts): {escape(str(out))}")


@rollout_app.command("tick")
def tick_cmd() -> None:
    """Analyse once and carry out the decision (step, promote, abort or wait)."""
    from serving.rollout_controller import tick

    ctx, store, engine = _parts()
    _show(tick(ctx.settings, ctx.params, store, engine))


@rollout_app.command("run")
def run_cmd(
    interval: Annotated[float, typer.Option(help="Seconds between analyses.")] = 10.0,
    max_ticks: Annotated[int, typer.Option(help="Stop after this many analyses (0 = until finished).")] = 0,
    prefect: Annotated[
        bool, typer.Option("--prefect", help="Run the loop as the Prefect flow `rollout` (task runs + artifacts).")
    ] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", help="Run as the deployed controller: forever, idle-tolerant, retrying, stopped by SIGTERM."
        ),
    ] = False,
    max_backoff: Annotated[float, typer.Option(help="--watch: longest wait between failed ticks (s).")] = 60.0,
    heartbeat: Annotated[
        Path | None, typer.Option(help="--watch: heartbeat file (default: rollout-controller.heartbeat in the state).")
    ] = None,
) -> None:
    """Analyse every INTERVAL seconds until the rollout is promoted or aborted (restartable); --watch: forever."""
    if watch:
        if prefect or max_ticks:
            console.print("[red]--watch runs until stopped: it takes neither --prefect nor --max-ticks[/red]")
            raise typer.Exit(2)
        _watch(interval, max_backoff, heartbeat)
        return
    from serving.rollout import ACTIVE
    from serving.rollout_controller import tick

    ctx, store, engine = _parts()
    if prefect:
        from flows.rollout_flow import ARTIFACT_KEY, rollout_flow

        status = rollout_flow(ctx.settings, interval_s=interval, max_ticks=max_ticks)
        last = store.rollout().history[-1:]
        console.print(f"rollout flow finished: [bold]{status}[/bold]" + (f"  {escape(last[0].reason)}" if last else ""))
        console.print(f"every decision is a `{ARTIFACT_KEY}` artifact of the flow run (Prefect UI: `mlops-lab ui`)")
        return
    ticks = 0
    while True:
        result = tick(ctx.settings, ctx.params, store, engine)
        _show(result)
        ticks += 1
        if result.state.status not in ACTIVE or (max_ticks and ticks >= max_ticks):
            return
        time.sleep(interval)  # a controller's polling interval, not test synchronisation


def _watch(interval: float, max_backoff: float, heartbeat: Path | None) -> None:
    """The loop in a worker thread; the main thread only waits and turns SIGTERM / SIGINT into a stop.

    A Python signal handler runs in the main thread; setting the event from there while the same thread
    sat inside ``stop.wait`` could deadlock on the event's lock, so the loop runs elsewhere. A second
    SIGINT (an impatient Ctrl-C) raises KeyboardInterrupt at once; a repeated SIGTERM changes nothing,
    since some supervisors send it to the whole process group (the kubelet's answer to a stuck stop is
    SIGKILL after terminationGracePeriodSeconds anyway).
    """
    import logging
    import signal
    import sys
    import threading

    from core.context import load_context
    from serving.rollout_watch import HEARTBEAT_FILE, ControllerSession, watch

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    log = logging.getLogger("serving.rollout_watch")
    if interval <= 0 or max_backoff <= 0:
        console.print(f"[red]--interval and --max-backoff must be > 0, got {interval} and {max_backoff}[/red]")
        raise typer.Exit(2)
    ctx = load_context()
    session = ControllerSession(ctx.settings, ctx.params)
    stop = threading.Event()
    failed: list[BaseException] = []

    def on_signal(signum: int, _frame: object) -> None:
        log.info("%s: finishing the current tick, then stopping", signal.Signals(signum).name)
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def loop() -> None:
        try:
            watch(
                session,
                stop,
                interval_s=interval,
                max_backoff_s=max_backoff,
                heartbeat=heartbeat or ctx.settings.state / HEARTBEAT_FILE,
            )
        except BaseException as err:  # handed to the main thread, which exits non-zero with it
            failed.append(err)
        finally:
            session.close()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    worker = threading.Thread(target=loop, name="rollout-controller", daemon=True)
    worker.start()
    worker.join()  # interrupted by a signal only long enough to run on_signal
    if failed:
        raise failed[0]


@rollout_app.command("heartbeat")
def heartbeat_cmd(
    max_age: Annotated[float, typer.Option(help="Fail when the last heartbeat is older than this (s).")] = 180.0,
    ready: Annotated[bool, typer.Option("--ready", help="Also fail while the last tick failed (readiness).")] = False,
    path: Annotated[Path | None, typer.Option(help="Heartbeat file (default: the one `run --watch` writes).")] = None,
) -> None:
    """Probe a `run --watch` controller: exit 0 if its heartbeat is fresh, 1 (with the reason) if not."""
    from datetime import UTC, datetime

    from core.settings import Settings
    from serving.rollout_watch import HEARTBEAT_FILE, heartbeat_problem

    problem = heartbeat_problem(path or Settings().state / HEARTBEAT_FILE, max_age, datetime.now(UTC), require_ok=ready)
    if problem:
        console.print(problem)
        raise typer.Exit(1)
    console.print("ok")


def _operate(operation: str, reason: str) -> None:
    from serving.rollout import RolloutTransitionError
    from serving.rollout_controller import operate

    ctx, store, _ = _parts()
    try:
        _show(operate(ctx.settings, store, operation, ctx.settings.actor, reason))
    except (RolloutTransitionError, ValueError) as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from err


@rollout_app.command("pause")
def pause_cmd(reason: Annotated[str, typer.Option(help="Why.")] = "") -> None:
    """Hold the current weight (breaches still abort)."""
    _operate("pause", reason)


@rollout_app.command("resume")
def resume_cmd(reason: Annotated[str, typer.Option(help="Why.")] = "") -> None:
    """Let a paused rollout step again."""
    _operate("resume", reason)


@rollout_app.command("abort")
def abort_cmd(reason: Annotated[str, typer.Option(help="Why (required).")]) -> None:
    """Send all traffic back to the champion and mark the challenger rejected."""
    _operate("abort", reason)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.add_typer(rollout_app, name="rollout")
