"""Shared state store: defaults without writing, compare-and-swap, retries, round trips, exact increments."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.params import BanditParams, RolloutParams, RoutingParams
from serving.rollout import RolloutState, pause, start
from serving.router import RoutingState, with_weight
from serving.state_store import (
    ChangeToken,
    StateConflictError,
    StateStore,
    StateStoreError,
    routing_table,
)

# Written out (not read from params.yaml) so an edit to the file cannot silently change what is tested.
DEFAULTS = RoutingParams(strategy="ab", canary_weight=0.0, ab_split=0.3, bandit=BanditParams(epsilon=0.2))
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'predictions.db'}"


@pytest.fixture
def store(url: str) -> Iterator[StateStore]:
    s = StateStore(url, DEFAULTS)
    yield s
    s.close()


def test_routing_defaults_come_from_params_without_writing_a_row(store: StateStore) -> None:
    state = store.routing()
    assert (state.strategy, state.ab_split, state.version) == ("ab", 0.3, 0)
    with store.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(routing_table)) == 0
    assert store.change_token() == ChangeToken(0, 0, 0)


def test_compare_and_swap_succeeds_once_and_rejects_a_stale_version(url: str, store: StateStore) -> None:
    base = store.routing()
    assert store.put_routing(with_weight(base, 0.1), expected_version=0)
    assert not store.put_routing(with_weight(base, 0.9), expected_version=0)  # stale: someone wrote v1
    other = StateStore(url, DEFAULTS)  # a second worker sees the first worker's write
    assert (other.routing().canary_weight, other.routing().version) == (0.1, 1)
    assert other.put_routing(with_weight(other.routing(), 0.25), expected_version=1)
    assert not store.put_routing(replace(base, canary_weight=0.5, version=2), expected_version=1)
    assert (store.routing().canary_weight, store.routing().version) == (0.25, 2)
    other.close()


def test_put_routing_insists_on_the_next_version(store: StateStore) -> None:
    with pytest.raises(ValueError, match="expected_version \\+ 1 = 1"):
        store.put_routing(replace(store.routing(), canary_weight=0.1, version=5), expected_version=0)
    assert store.routing().version == 0


def test_update_routing_retries_through_a_concurrent_change(url: str, store: StateStore) -> None:
    other = StateStore(url, DEFAULTS)
    seen: list[int] = []

    def raise_weight(state: RoutingState) -> RoutingState:
        seen.append(state.version)
        if len(seen) == 1:  # another worker pauses the rollout between our read and our write
            assert other.update_routing(lambda s: replace(s, paused=True)).version == 1
        return with_weight(with_weight(state, 0.5), 0.5)  # two bumps: the store still assigns version + 1

    result = store.update_routing(raise_weight)
    assert seen == [0, 1]  # the first attempt lost the swap and was re-applied on the fresh state
    assert result == store.routing()
    assert (result.canary_weight, result.paused, result.version) == (0.5, True, 2)  # neither update lost
    other.close()


def test_update_routing_gives_up_with_a_conflict_error(url: str, store: StateStore) -> None:
    other = StateStore(url, DEFAULTS)
    calls = 0

    def always_raced(state: RoutingState) -> RoutingState:
        nonlocal calls
        calls += 1
        other.update_routing(lambda s: with_weight(s, 0.2))
        return with_weight(state, 0.9)

    with pytest.raises(StateConflictError, match="3 times in a row"):
        store.update_routing(always_raced, retries=2)
    assert calls == 3
    assert (store.routing().canary_weight, store.routing().version) == (0.2, 3)
    other.close()


def test_rollout_round_trips_through_json_and_defaults_to_idle(url: str, store: StateStore) -> None:
    assert store.rollout() == RolloutState()
    params = RolloutParams(steps=[10, 50, 100])
    state, _ = start("7", params, T0)
    state, _ = pause(state, T0.replace(minute=5), "looking at a dashboard")
    store.put_rollout(state)
    other = StateStore(url, DEFAULTS)
    reread = other.rollout()
    other.close()
    assert reread == state
    assert reread.history[-1].at == T0.replace(minute=5)
    assert (reread.status, reread.weight, reread.challenger_version) == ("paused", 0.1, "7")


def test_update_rollout_reapplies_its_change_after_a_concurrent_write(url: str, store: StateStore) -> None:
    store.put_rollout(start("7", RolloutParams(steps=[10, 100]), T0)[0])
    other = StateStore(url, DEFAULTS)
    attempts = 0

    def step(state: RolloutState) -> RolloutState:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            other.update_rollout(lambda s: pause(s, T0, "hold")[0])
        return replace(state, step_index=state.step_index + 1)

    store.update_rollout(step)
    final = store.rollout()
    assert attempts == 2
    assert (final.status, final.step_index) == ("paused", 1)  # the pause survived the step
    other.close()


def test_bandit_reads_stored_counts_with_params_and_zero_for_new_arms(store: StateStore) -> None:
    store.add_reward("challenger", 1.0)
    store.add_reward("challenger", 0.25)
    state = store.bandit(("champion", "challenger"), BanditParams(algorithm="epsilon_greedy", epsilon=0.3))
    assert state.successes == {"champion": 0.0, "challenger": 1.25}
    assert state.failures == {"champion": 0.0, "challenger": 0.75}
    assert (state.algorithm, state.epsilon) == ("epsilon_greedy", 0.3)
    assert store.bandit().epsilon == 0.2  # params default to the store's routing defaults


def test_bandit_increments_are_exact_under_concurrent_threads(store: StateStore) -> None:
    threads, calls = 8, 500
    rewards = (1.0, 0.0, 0.25, 0.5)  # exact in binary, so the sums must match to the last bit
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def feed(worker: int) -> None:
        try:
            barrier.wait(timeout=10)
            for i in range(calls):
                store.add_reward("champion" if (worker + i) % 2 else "challenger", rewards[i % 4])
        except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)

    pool = [threading.Thread(target=feed, args=(w,)) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert not errors
    state = store.bandit()
    total = threads * calls
    assert sum(state.successes.values()) == total * sum(rewards) / 4
    assert sum(state.successes.values()) + sum(state.failures.values()) == total
    assert state.successes["champion"] == state.successes["challenger"] == total * sum(rewards) / 8
    assert store.change_token().bandit == total


def test_reset_bandit_zeroes_counts_but_the_change_token_still_moves(store: StateStore) -> None:
    store.add_reward("champion", 1.0)
    before = store.change_token()
    store.reset_bandit()
    assert store.bandit().successes == {"champion": 0.0, "challenger": 0.0}
    assert store.change_token().bandit > before.bandit


def test_change_token_moves_on_every_write_and_never_on_reads(store: StateStore) -> None:
    tokens = [store.change_token()]
    store.update_routing(lambda s: with_weight(s, 0.1))
    tokens.append(store.change_token())
    store.put_rollout(RolloutState())
    tokens.append(store.change_token())
    store.put_rollout(RolloutState())  # same content, still a write
    tokens.append(store.change_token())
    store.add_reward("champion", 0.5)
    tokens.append(store.change_token())
    store.routing(), store.rollout(), store.bandit()
    assert store.change_token() == tokens[-1]
    assert tokens == [ChangeToken(0, 0, 0), ChangeToken(1, 0, 0), ChangeToken(1, 1, 0), (1, 2, 0), (1, 2, 1)]


@pytest.mark.parametrize(("arm", "reward"), [("champion", 1.5), ("champion", -0.1), ("champion", True), ("", 1.0)])
def test_add_reward_rejects_bad_input(store: StateStore, arm: str, reward: float) -> None:
    with pytest.raises(ValueError, match=r"^(arm|reward) must"):
        store.add_reward(arm, reward)
    assert store.change_token().bandit == 0


@pytest.mark.parametrize("bad", ["sqlite://", "sqlite:///:memory:", "mysql://u@h/db"])
def test_unshareable_or_unsupported_urls_are_refused(bad: str) -> None:
    with pytest.raises(StateStoreError, match="sqlite:///"):
        StateStore(bad, DEFAULTS)


def test_tables_sit_beside_the_prediction_log_without_touching_it(url: str, store: StateStore) -> None:
    from serving.prediction_log import PredictionLog

    log = PredictionLog(url).start()
    log.close()
    store.add_reward("champion", 1.0)
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"routing_state", "rollout_state", "bandit_arms", "predictions", "feedback"} <= names
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
