"""The rollout controller as a long-running process: tick forever, survive outages, stop cleanly.

Concepts: canary release with automated analysis (C21) and automatic rollback (C26), run where a
cluster can keep it alive (C47). `rollout_controller.tick` is one decision; this module is the loop a
Deployment runs around it (`mlops-lab rollout run --watch`). It is built to be left alone for months:

- **Idle is normal.** With no rollout in progress a tick only reads the rollout row and waits: no
  registry call and no write, so an idle controller does not bump the state's revision (which every
  API replica polls). A canary started by CD or by the retraining flow is picked up at the next tick.
- **An outage is a retry, not a crash.** A tick that raises (database restarting, MLflow unreachable,
  a compare-and-swap lost too often) is logged and retried after a backoff that doubles up to a cap.
  Restarting the pod would not bring the database back sooner; the state is in the database, so the
  next good tick carries on where the last one stopped.
- **Stopping finishes the tick.** A stop (SIGTERM from the kubelet, Ctrl-C) only sets an event; the
  tick in progress completes, so a decision is never half carried out by our own hand.
- **Alive is observable.** After every attempt a small JSON heartbeat file is replaced atomically.
  `heartbeat_problem` judges it: too old means the loop is stuck (liveness: restart it), a failed last
  tick means it cannot reach its dependencies (readiness: show it).

The clock, the wait and the tick are injected, so tests drive the loop tick by tick without sleeping.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serving.prediction_log import make_engine
from serving.rollout import ACTIVE, Action
from serving.rollout_controller import Tick, tick
from serving.state_store import StateStore

if TYPE_CHECKING:
    import threading

    import sqlalchemy as sa

    from core.params import Params
    from core.settings import Settings

log = logging.getLogger(__name__)
HEARTBEAT_FILE = "rollout-controller.heartbeat"  # in the state folder unless told otherwise


def tick_if_active(
    settings: Settings, params: Params, store: StateStore, engine: sa.Engine, now: datetime | None = None
) -> Tick:
    """One tick, but a read-only wait when no rollout is in progress (no registry call, no write)."""
    state = store.rollout()
    if state.status not in ACTIVE:
        return Tick(state, Action("wait", f"no rollout in progress (status {state.status})"), None)
    return tick(settings, params, store, engine, now)


class ControllerSession:
    """Opens the state store and the prediction log engine on first use, so a database that is down
    when the process starts is one more failed tick to retry, not a crash at startup."""

    def __init__(self, settings: Settings, params: Params) -> None:
        self.settings, self.params = settings, params
        self._parts: tuple[StateStore, sa.Engine] | None = None

    def __call__(self, now: datetime) -> Tick:
        if self._parts is None:
            store = StateStore(self.settings.prediction_log_uri, self.params.routing)
            self._parts = (store, make_engine(self.settings.prediction_log_uri))
        store, engine = self._parts
        return tick_if_active(self.settings, self.params, store, engine, now)

    def close(self) -> None:
        if self._parts is not None:
            store, engine = self._parts
            engine.dispose()
            store.close()
            self._parts = None


@dataclass
class WatchReport:
    """What a watch loop did, for its last log line and for tests."""

    ticks: int = 0  # attempts, failed ones included
    failures: int = 0
    actions: list[str] = field(default_factory=list)  # the kinds of the non-wait actions, in order


def retry_delay(interval_s: float, failures_in_a_row: int, max_backoff_s: float) -> float:
    """Seconds until the next tick: the interval, doubled per failure in a row, capped at max_backoff_s."""
    if failures_in_a_row == 0:
        return interval_s
    return min(interval_s * 2 ** (failures_in_a_row - 1), max(max_backoff_s, interval_s))


def write_heartbeat(path: Path, at: datetime, report: WatchReport, failures_in_a_row: int, last: str) -> None:
    """Replace the heartbeat file atomically (a reader never sees half a file)."""
    body = {"at": at.isoformat(), "ticks": report.ticks, "failures_in_a_row": failures_in_a_row, "last": last}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(body))
    tmp.replace(path)


def read_heartbeat(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def heartbeat_problem(path: Path, max_age_s: float, now: datetime, *, require_ok: bool = False) -> str | None:
    """None if the heartbeat is fresh (and, with ``require_ok``, the last tick succeeded); else why not."""
    try:
        beat = read_heartbeat(path)
        age = (now - datetime.fromisoformat(beat["at"])).total_seconds()
    except FileNotFoundError:
        return f"no heartbeat at {path}: is `mlops-lab rollout run --watch` running with this state folder?"
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"unreadable heartbeat {path}: {err}"
    if age > max_age_s:
        return f"last heartbeat {age:.0f} s ago (limit {max_age_s:g} s): the loop is stuck"
    if require_ok and beat["failures_in_a_row"]:
        return f"{beat['failures_in_a_row']} failed tick(s) in a row; last: {beat['last']}"
    return None


def _describe(result: Tick) -> str:
    state, action = result.state, result.action
    if state.challenger_version is None:
        return action.reason
    where = f"rollout of v{state.challenger_version} {state.status} at {100 * state.weight:g} %"
    return f"{where}: {action.kind}, {action.reason}"


def watch(
    step: Callable[[datetime], Tick],
    stop: threading.Event,
    *,
    interval_s: float,
    max_backoff_s: float = 60.0,
    heartbeat: Path | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    wait: Callable[[float], bool] | None = None,
) -> WatchReport:
    """Call ``step(now)`` every ``interval_s`` seconds until ``stop`` is set; return what happened.

    ``wait(seconds)`` returns True when stopped early (default ``stop.wait``). Any exception from a step
    is logged and retried after `retry_delay`: this loop is the process's last line of defence, and a
    crash would only restart it into the same outage. KeyboardInterrupt and SystemExit still propagate.

    Raises:
        ValueError: interval_s is not positive.
    """
    if interval_s <= 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s}")
    wait = wait or stop.wait
    report, failures_in_a_row, last_idle = WatchReport(), 0, ""
    if heartbeat is not None:
        write_heartbeat(heartbeat, clock(), report, 0, "starting")
    log.info("rollout controller watching every %g s", interval_s)
    while not stop.is_set():
        report.ticks += 1
        try:
            result = step(clock())
        except Exception as err:  # logged and retried with backoff: see the docstring
            failures_in_a_row += 1
            report.failures += 1
            last = f"{type(err).__name__}: {' '.join(str(err).split())}"[:500]  # one log line per retry
            delay = retry_delay(interval_s, failures_in_a_row, max_backoff_s)
            # The traceback once per outage; then one line per retry.
            log.warning("tick failed (%s); retry in %g s", last, delay, exc_info=failures_in_a_row == 1)
        else:
            if failures_in_a_row:
                log.info("recovered after %d failed tick(s)", failures_in_a_row)
            failures_in_a_row, last = 0, _describe(result)
            if result.action.kind != "wait":
                report.actions.append(result.action.kind)
            if result.state.status in ACTIVE or result.action.kind != "wait":
                log.info("%s", last)
                last_idle = ""
            elif last_idle != result.state.status:  # idle: say so once, not every interval
                log.info("%s; waiting for a rollout", last)
                last_idle = result.state.status
            delay = interval_s
        if heartbeat is not None:
            try:
                write_heartbeat(heartbeat, clock(), report, failures_in_a_row, last)
            except OSError as err:  # keep deciding; the stale heartbeat lets the liveness probe act on it
                log.warning("could not write the heartbeat %s: %s", heartbeat, err)
        if wait(delay):
            break
    log.info("rollout controller stopped after %d tick(s), %d failed", report.ticks, report.failures)
    return report
