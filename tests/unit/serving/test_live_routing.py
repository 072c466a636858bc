"""Runtime switches across workers: each worker applies a routing change whole, the fleet converges in one poll.

Two `LiveRouting` objects stand for two workers (or replicas) reading one real SQLite state store. A worker
serves from one immutable `RoutingState` snapshot and replaces it in a single assignment when it polls, so
it never serves a half-applied change; until every worker has polled once, the fleet is mixed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from core.params import Params
from serving.router import RoutingState, route, switch_slot
from serving.runtime import LiveRouting
from serving.state_store import StateStore


@pytest.fixture
def store(tmp_path: Path, params: Params) -> Iterator[StateStore]:
    s = StateStore(f"sqlite:///{tmp_path / 'predictions.db'}", params.routing)
    yield s
    s.close()


def _to(target: RoutingState) -> Callable[[RoutingState], RoutingState]:
    return lambda _current: target


def _fields(state: RoutingState) -> tuple[str, float, str]:
    return (state.strategy, state.canary_weight, state.active_slot)


def _served(worker: LiveRouting) -> str:
    return route(worker.current(), "user-1").served_alias


def test_a_switch_reaches_each_worker_at_its_next_poll_and_the_fleet_within_one_interval(
    store: StateStore, params: Params
) -> None:
    store.update_routing(lambda s: replace(s, strategy="blue_green"))
    a, b = LiveRouting(params, store), LiveRouting(params, store)
    a.refresh()
    b.refresh()
    assert (_served(a), _served(b)) == ("champion", "champion")  # blue slot

    store.update_routing(switch_slot)  # one compare-and-swapped write
    assert (_served(a), _served(b)) == ("champion", "champion")  # no worker has polled yet: old state
    a.refresh()  # worker a's poll comes first
    assert (_served(a), _served(b)) == ("challenger", "champion")  # the fleet is mixed until b polls
    b.refresh()  # every worker polls once per interval, so one interval after the write all agree
    assert (_served(a), _served(b)) == ("challenger", "challenger")
    assert a.current() == b.current() == store.routing()


def test_a_worker_never_serves_a_half_applied_change(store: StateStore, params: Params) -> None:
    """A writer flips two fields together while a worker polls and a reader samples: only whole states appear."""
    before = RoutingState(strategy="canary", canary_weight=0.1, active_slot="blue")
    after = RoutingState(strategy="blue_green", canary_weight=0.9, active_slot="green")
    store.update_routing(lambda s: before)
    worker = LiveRouting(params, store)
    worker.refresh()
    stop, seen = threading.Event(), set[tuple[str, float, str]]()

    def poll() -> None:
        while not stop.is_set():
            worker.refresh()

    def sample() -> None:
        while not stop.is_set():
            seen.add(_fields(worker.current()))

    threads = [threading.Thread(target=poll), threading.Thread(target=sample)]
    for t in threads:
        t.start()
    try:
        for i in range(60):  # bounded: 60 writes; the store assigns each its version
            store.update_routing(_to(after if i % 2 == 0 else before))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert worker.last_error is None
    assert seen <= {_fields(before), _fields(after)}, seen
    worker.refresh()
    assert worker.current() == store.routing()  # and it ends on the last write
