"""The watching rollout controller's loop (serving/rollout_watch.py), driven tick by tick.

The loop runs the real `rollout_controller.tick` on a real state store and prediction log (SQLite files
in tmp_path); only the model registry is an in-memory fake, so a registry outage can be switched on and
off. Time is a fake clock that the fake `wait` advances, and traffic is written into the log between
ticks with timestamps inside the step's window, so no test sleeps. The race between two controllers is
replayed deterministically: controller B's whole tick runs while controller A is between reading the
rollout and writing its decision.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import pipelines.registry
import serving.rollout_controller as controller
from core.params import Params
from core.settings import Settings
from serving.log_schema import feedback_table, make_engine, metadata, predictions_table
from serving.rollout import Action, RolloutState
from serving.rollout_controller import Tick, begin_rollout, tick
from serving.rollout_watch import (
    ControllerSession,
    WatchReport,
    heartbeat_problem,
    read_heartbeat,
    retry_delay,
    watch,
    write_heartbeat,
)
from serving.state_store import StateStore

REPO = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
INTERVAL = 10.0
_ids = itertools.count()


@dataclass
class FakeRegistry:
    """Aliases in a dict; `down` makes the next calls raise as an unreachable MLflow would."""

    aliases: dict[str, str] = field(default_factory=lambda: {"champion": "1", "challenger": "2"})
    rejected: list[str] = field(default_factory=list)
    promotions: int = 0
    down: int = 0  # this many calls fail
    promote_down: int = 0  # this many promotions fail

    def _maybe_fail(self) -> None:
        if self.down:
            self.down -= 1
            raise ConnectionError("MLflow at http://mlflow:5000 unreachable")

    def current_aliases(self, _settings: Settings) -> dict[str, str]:
        self._maybe_fail()
        return dict(self.aliases)

    def promote(self, _settings: Settings, _actor: str, _reason: str) -> None:
        if self.promote_down:
            self.promote_down -= 1
            raise ConnectionError("MLflow at http://mlflow:5000 unreachable")
        self.aliases = {"champion": self.aliases.pop("challenger"), "previous": self.aliases["champion"]}
        self.promotions += 1

    def servable_challenger(self, settings: Settings, _features: list[str]) -> str:
        return self.current_aliases(settings)["challenger"]

    def reject_challenger(self, _settings: Settings, _actor: str, reason: str) -> str:
        self.rejected.append(reason)
        return self.aliases["challenger"]


@dataclass
class World:
    settings: Settings
    params: Params
    store: StateStore
    engine: sa.Engine
    registry: FakeRegistry


@pytest.fixture
def world(tmp_path: Path, params: Params, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    registry = FakeRegistry()
    for name in ("current_aliases", "servable_challenger", "promote", "reject_challenger"):
        monkeypatch.setattr(pipelines.registry, name, getattr(registry, name))
    settings = Settings(project_dir=REPO, state_dir=tmp_path / "state")
    small = params.rollout.model_copy(update={"min_requests": 20, "min_feedback": 10})  # fewer rows, same rules
    store = StateStore(settings.prediction_log_uri, params.routing)
    engine = make_engine(settings.prediction_log_uri)
    metadata.create_all(engine)
    yield World(settings, params.model_copy(update={"rollout": small}), store, engine, registry)
    engine.dispose()
    store.close()


def serve(engine: sa.Engine, arm: str, version: str, n: int, at: datetime, *, errors: int = 0) -> None:
    """n requests on one arm at time `at`, each labelled correct; the first `errors` failed."""
    rows, labels = [], []
    for i in range(n):
        rid = f"r{next(_ids)}"
        failed = i < errors
        rows.append(
            {
                "request_id": rid,
                "ts": at,
                "model_name": "iris-classifier",
                "model_version": version,
                "arm": arm,
                "strategy": "canary",
                "features": {"sepal_length": 5.0},
                "prediction": None if failed else "setosa",
                "latency_ms": 2.0,
                "status": "error" if failed else "ok",
            }
        )
        if not failed:
            labels.append({"request_id": rid, "ts": at, "label": "setosa"})
    with engine.begin() as conn:
        conn.execute(sa.insert(predictions_table), rows)
        if labels:
            conn.execute(sa.insert(feedback_table), labels)


class FakeTime:
    """A clock and a `wait` that advances it; `between` runs at every wait (traffic, a stop, ...)."""

    def __init__(self, stop: threading.Event, waits: int, between: Callable[[datetime], None] = lambda _t: None):
        self.now, self.stop, self.left, self.between = T0, stop, waits, between
        self.delays: list[float] = []

    def clock(self) -> datetime:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.delays.append(seconds)
        self.between(self.now + timedelta(seconds=seconds / 2))  # traffic arrives during the wait
        self.now += timedelta(seconds=seconds)
        self.left -= 1
        if self.left <= 0:
            self.stop.set()
        return self.stop.is_set()


def run_loop(w: World, time: FakeTime, heartbeat: Path | None = None) -> WatchReport:
    session = ControllerSession(w.settings, w.params)
    try:
        return watch(session, time.stop, interval_s=INTERVAL, heartbeat=heartbeat, clock=time.clock, wait=time.wait)
    finally:
        session.close()


def both_arms(w: World, challenger_errors: int = 0) -> Callable[[datetime], None]:
    n = w.params.rollout.min_requests

    def traffic(at: datetime) -> None:
        serve(w.engine, "champion", "1", n, at)
        serve(w.engine, "challenger", "2", n, at, errors=challenger_errors)

    return traffic


# ---- the loop ------------------------------------------------------------------------------------------


def test_idle_ticks_wait_read_only_and_keep_the_heartbeat_fresh(world: World, tmp_path: Path) -> None:
    stop = threading.Event()
    time = FakeTime(stop, waits=3)
    beat = tmp_path / "beat.json"
    report = run_loop(world, time, beat)
    assert (report.ticks, report.failures, report.actions) == (3, 0, [])
    assert time.delays == [INTERVAL] * 3
    assert world.store.change_token().rollout == 0, "an idle tick writes nothing"
    assert read_heartbeat(beat)["ticks"] == 3
    assert heartbeat_problem(beat, 60, time.now, require_ok=True) is None


def test_the_loop_walks_a_good_challenger_through_every_step_to_promotion(world: World) -> None:
    begin_rollout(world.settings, world.params, world.store, now=T0)
    stop = threading.Event()
    steps = world.params.rollout.steps
    time = FakeTime(stop, waits=len(steps) + 3, between=both_arms(world))
    report = run_loop(world, time)
    # first tick: no traffic yet (inconclusive); then one passing analysis per step, the last one promotes
    assert report.actions == ["set_weight"] * (len(steps) - 1) + ["promote"]
    assert report.failures == 0
    assert world.store.rollout().status == "promoted"
    assert world.store.routing().canary_weight == 0.0
    assert (world.registry.promotions, world.registry.aliases["champion"]) == (1, "2")
    events = [e.event for e in world.store.rollout().history]
    assert events.count("step") == len(steps) - 1
    assert report.ticks == len(steps) + 3  # it kept watching after the promotion, idle


def test_the_loop_aborts_a_failing_challenger_and_rejects_it(world: World) -> None:
    begin_rollout(world.settings, world.params, world.store, now=T0)
    stop = threading.Event()
    n = world.params.rollout.min_requests
    report = run_loop(world, FakeTime(stop, waits=3, between=both_arms(world, challenger_errors=n // 2)))
    assert report.actions == ["abort"]
    state = world.store.rollout()
    assert (state.status, state.weight, world.store.routing().canary_weight) == ("aborted", 0.0, 0.0)
    assert len(world.registry.rejected) == 1
    assert "error" in world.registry.rejected[0]


def test_a_registry_outage_is_logged_and_retried_with_backoff(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    begin_rollout(world.settings, world.params, world.store, now=T0)
    world.registry.down = 3  # the first three ticks cannot reach MLflow
    stop = threading.Event()
    beat = tmp_path / "beat.json"
    seen: list[dict[str, Any]] = []

    def traffic_and_look(at: datetime) -> None:
        both_arms(world)(at)
        seen.append(read_heartbeat(beat))

    time = FakeTime(stop, waits=5, between=traffic_and_look)
    with caplog.at_level(logging.INFO, logger="serving.rollout_watch"):
        report = run_loop(world, time, beat)
    assert time.delays == [INTERVAL, 2 * INTERVAL, 4 * INTERVAL, INTERVAL, INTERVAL]
    assert [b["failures_in_a_row"] for b in seen] == [1, 2, 3, 0, 0]
    assert "ConnectionError: MLflow at http://mlflow:5000 unreachable" in seen[0]["last"]
    assert report.failures == 3
    assert report.actions == ["set_weight", "set_weight"], "after the outage it carried on stepping"
    messages = [r.getMessage() for r in caplog.records]
    assert sum("tick failed (ConnectionError" in m for m in messages) == 3
    assert any("recovered after 3 failed tick(s)" in m for m in messages)


def test_a_refused_promotion_is_undone_and_the_next_tick_promotes_once(world: World) -> None:
    begin_rollout(world.settings, world.params, world.store, now=T0)
    world.registry.promote_down = 1
    stop = threading.Event()
    steps = world.params.rollout.steps
    report = run_loop(world, FakeTime(stop, waits=len(steps) + 3, between=both_arms(world)))
    assert report.failures == 1
    assert report.actions[-1] == "promote"
    assert world.registry.promotions == 1
    assert [e.event for e in world.store.rollout().history].count("promote") == 1


def test_a_stop_during_a_tick_lets_the_tick_finish_and_starts_no_other(world: World) -> None:
    stop = threading.Event()
    calls: list[datetime] = []

    def step(now: datetime) -> Tick:
        calls.append(now)
        stop.set()  # SIGTERM arrives mid-tick
        return Tick(RolloutState(), Action("wait", "finished anyway"), None)

    report = watch(step, stop, interval_s=3600)  # the real stop.wait: returns at once, never sleeps an hour
    assert (len(calls), report.ticks, report.failures) == (1, 1, 0)
    assert watch(step, stop, interval_s=3600).ticks == 0, "already stopped: no tick at all"


def test_a_stop_during_the_wait_ends_the_loop_without_waiting_out_the_interval(world: World) -> None:
    stop, ticked = threading.Event(), threading.Event()
    session = ControllerSession(world.settings, world.params)

    def step(now: datetime) -> Tick:
        result = session(now)
        ticked.set()
        return result

    reports: list[WatchReport] = []
    loop = threading.Thread(target=lambda: reports.append(watch(step, stop, interval_s=3600)), daemon=True)
    loop.start()
    try:
        assert ticked.wait(30), "the first tick never ran"
        stop.set()
        loop.join(30)
        assert not loop.is_alive(), "the loop did not stop within 30 s of the stop event"
    finally:
        stop.set()
        session.close()
    assert reports[0].ticks == 1


def test_the_loop_refuses_a_non_positive_interval() -> None:
    with pytest.raises(ValueError, match="interval_s must be > 0"):
        watch(lambda _now: Tick(RolloutState(), Action("wait", ""), None), threading.Event(), interval_s=0)


# ---- two controllers at once ---------------------------------------------------------------------------


def race(w: World, store_b: StateStore, monkeypatch: pytest.MonkeyPatch) -> tuple[Tick, Tick]:
    """Controller A reads the rollout and measures; before it writes, controller B ticks in full."""
    real = controller.arm_metrics
    b_ticks: list[Tick] = []
    b_started = False

    def interleaved(*args: Any, **kwargs: Any) -> Any:
        nonlocal b_started
        if not b_started and args[1] == "challenger":  # A is between its read and its compare-and-swap
            b_started = True
            b_ticks.append(tick(w.settings, w.params, store_b, w.engine, now=T0 + timedelta(seconds=20)))
        return real(*args, **kwargs)

    monkeypatch.setattr(controller, "arm_metrics", interleaved)
    a = tick(w.settings, w.params, w.store, w.engine, now=T0 + timedelta(seconds=21))
    return a, b_ticks[0]


def test_two_controllers_racing_step_the_rollout_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    begin_rollout(world.settings, world.params, world.store, now=T0)
    both_arms(world)(T0 + timedelta(seconds=5))  # evidence for exactly one step
    store_b = StateStore(world.settings.prediction_log_uri, world.params.routing)  # the second replica
    try:
        a, b = race(world, store_b, monkeypatch)
    finally:
        store_b.close()
    assert b.action.kind == "set_weight"  # B won the compare-and-swap and stepped 10 -> 25 %
    # A lost it, re-read the rollout and decided afresh: the new step's window has no traffic yet.
    assert a.action.kind == "wait"
    state = world.store.rollout()
    assert state.weight == pytest.approx(world.params.rollout.steps[1] / 100)
    assert [e.event for e in state.history] == ["start", "step", "wait"]
    assert state.step_started_at == T0 + timedelta(seconds=20), "the step recorded is B's"
    assert world.store.routing().canary_weight == pytest.approx(world.params.rollout.steps[1] / 100)


class LastWriterWins(StateStore):
    """What the race would do without compare-and-swap: read, decide, overwrite."""

    def update_rollout(self, fn: Callable[[RolloutState], RolloutState], retries: int = 5) -> RolloutState:
        new = fn(self.rollout())
        self.put_rollout(new)
        return new


def test_without_compare_and_swap_the_same_race_acts_on_a_stale_decision(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race above is a real one: with last-writer-wins, A reports and records its stale step."""
    unsafe = LastWriterWins(world.settings.prediction_log_uri, world.params.routing)
    begin_rollout(world.settings, world.params, unsafe, now=T0)
    both_arms(world)(T0 + timedelta(seconds=5))
    store_b = StateStore(world.settings.prediction_log_uri, world.params.routing)
    try:
        a, b = race(World(world.settings, world.params, unsafe, world.engine, world.registry), store_b, monkeypatch)
    finally:
        store_b.close()
        unsafe.close()
    assert (a.action.kind, b.action.kind) == ("set_weight", "set_weight")  # both acted on one piece of evidence
    assert world.store.rollout().step_started_at == T0 + timedelta(seconds=21), "B's decision was overwritten"


# ---- heartbeat, backoff, CLI ---------------------------------------------------------------------------


def test_heartbeat_problems_name_the_cause(tmp_path: Path) -> None:
    beat = tmp_path / "beat.json"
    assert "no heartbeat" in str(heartbeat_problem(beat, 60, T0))
    write_heartbeat(beat, T0, WatchReport(ticks=4), 0, "ok")
    assert heartbeat_problem(beat, 60, T0 + timedelta(seconds=60)) is None
    assert "the loop is stuck" in str(heartbeat_problem(beat, 60, T0 + timedelta(seconds=61)))
    write_heartbeat(beat, T0, WatchReport(ticks=5, failures=2), 2, "OperationalError: db down")
    assert heartbeat_problem(beat, 60, T0) is None, "alive: liveness passes during an outage"
    assert "2 failed tick(s) in a row; last: OperationalError" in str(heartbeat_problem(beat, 60, T0, require_ok=True))
    beat.write_text("{not json")
    assert "unreadable heartbeat" in str(heartbeat_problem(beat, 60, T0))


@pytest.mark.parametrize(("failures", "expected"), [(0, 10.0), (1, 10.0), (2, 20.0), (3, 40.0), (4, 60.0), (30, 60.0)])
def test_retry_delay_doubles_from_the_interval_up_to_the_cap(failures: int, expected: float) -> None:
    assert retry_delay(10.0, failures, 60.0) == expected


def test_watch_takes_neither_max_ticks_nor_prefect() -> None:
    from cli.app import app

    result = CliRunner().invoke(app, ["rollout", "run", "--watch", "--max-ticks", "3"])
    assert result.exit_code == 2
    assert "--watch runs until stopped" in result.output
