"""The retrain lease and cooldown: one retrain at a time, at most one per cooldown, crashed leases expire."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitoring.retrain_guard import end_cooldown, guard_state, release, try_acquire
from serving.prediction_log import make_engine

COOLDOWN, TTL = 600.0, 60.0


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    eng = make_engine(f"sqlite:///{tmp_path / 'guard.db'}")
    yield eng
    eng.dispose()


def test_first_retrain_acquires_and_a_second_is_refused_while_it_runs(engine: sa.Engine) -> None:
    first = try_acquire(engine, now=1000.0, cooldown_s=0.0, ttl_s=TTL)
    second = try_acquire(engine, now=1001.0, cooldown_s=0.0, ttl_s=TTL)
    assert first.acquired
    assert first.token
    assert not second.acquired
    assert "another retrain is running" in second.reason


def test_cooldown_counts_from_the_last_start_even_after_release(engine: sa.Engine) -> None:
    first = try_acquire(engine, now=1000.0, cooldown_s=COOLDOWN, ttl_s=TTL)
    assert first.token is not None
    assert release(engine, first.token, "failed: bad data", now=1010.0)
    early = try_acquire(engine, now=1000.0 + COOLDOWN - 1, cooldown_s=COOLDOWN, ttl_s=TTL)
    late = try_acquire(engine, now=1000.0 + COOLDOWN, cooldown_s=COOLDOWN, ttl_s=TTL)
    assert not early.acquired
    assert "cooldown" in early.reason
    assert late.acquired
    state = guard_state(engine)
    assert state["starts"] == 2
    assert state["last_result"] == "failed: bad data"


def test_ending_the_cooldown_lets_the_next_retrain_start_but_never_breaks_a_running_ones_lease(
    engine: sa.Engine,
) -> None:
    first = try_acquire(engine, now=1000.0, cooldown_s=COOLDOWN, ttl_s=TTL)
    assert first.token is not None
    assert not end_cooldown(engine, now=1001.0)  # the retrain still runs: its lease stays
    assert release(engine, first.token, "started-canary v2", now=1010.0)
    assert not try_acquire(engine, now=1020.0, cooldown_s=COOLDOWN, ttl_s=TTL).acquired  # cooling down
    assert end_cooldown(engine, now=1030.0)
    assert try_acquire(engine, now=1040.0, cooldown_s=COOLDOWN, ttl_s=TTL).acquired
    state = guard_state(engine)
    assert state["starts"] == 2
    assert state["last_result"] == "started-canary v2"


def test_a_crashed_retrains_lease_expires_after_its_ttl(engine: sa.Engine) -> None:
    crashed = try_acquire(engine, now=1000.0, cooldown_s=0.0, ttl_s=TTL)
    assert crashed.acquired
    assert not try_acquire(engine, now=1000.0 + TTL - 1, cooldown_s=0.0, ttl_s=TTL).acquired
    taken_over = try_acquire(engine, now=1000.0 + TTL + 1, cooldown_s=0.0, ttl_s=TTL)
    assert taken_over.acquired
    assert crashed.token is not None
    assert not release(engine, crashed.token, "late", now=1100.0)
    assert guard_state(engine)["holder"] == taken_over.token


def test_of_many_concurrent_monitors_exactly_one_gets_the_lease(engine: sa.Engine) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        barrier.wait()
        results.append(try_acquire(engine, now=5000.0, cooldown_s=COOLDOWN, ttl_s=TTL).acquired)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert guard_state(engine)["starts"] == 1
