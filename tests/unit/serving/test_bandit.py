"""Bandit routing: posterior updates, Thompson sampling vs a fixed split, epsilon-greedy exploration."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from core.params import BanditParams
from serving.bandit import (
    BanditState,
    choose,
    expected_rewards,
    simulate,
    simulate_fixed_split,
    update,
)

RATES = {"champion": 0.6, "challenger": 0.9}


def test_thompson_moves_traffic_to_the_better_arm() -> None:
    result = simulate(RATES, n=2000, algorithm="thompson", seed=7)
    assert result.best_arm == "challenger"
    assert result.late_share("challenger") >= 0.80
    assert sum(result.choices.values()) == 2000


def test_thompson_regret_is_far_below_a_fixed_split() -> None:
    bandit = simulate(RATES, n=2000, algorithm="thompson", seed=7)
    fixed = simulate_fixed_split(RATES, n=2000, seed=7)
    # A 50/50 split loses 0.15 on half the requests: about 0.5 * 0.3 * 2000 = 300.
    assert fixed.total_regret == pytest.approx(300, rel=0.1)
    assert bandit.total_regret < fixed.total_regret / 3
    assert list(bandit.regret) == sorted(bandit.regret)  # cumulative regret never decreases


def test_fixed_split_follows_the_given_weights() -> None:
    result = simulate_fixed_split(RATES, n=4000, split={"champion": 0.8, "challenger": 0.2}, seed=3)
    assert result.choices["challenger"] / 4000 == pytest.approx(0.2, abs=0.02)
    with pytest.raises(ValueError, match="split"):
        simulate_fixed_split(RATES, n=10, split={"other": 1.0})


def test_epsilon_greedy_explores_about_epsilon_of_the_time() -> None:
    result = simulate(RATES, n=4000, algorithm="epsilon_greedy", seed=11, epsilon=0.2)
    assert result.explorations / 4000 == pytest.approx(0.2, abs=0.02)
    # Exploring picks either arm uniformly, so once greedy has settled the worse arm gets about epsilon / 2.
    assert result.late_share("champion") == pytest.approx(0.1, abs=0.03)


def test_epsilon_zero_never_explores() -> None:
    assert simulate(RATES, n=500, algorithm="epsilon_greedy", seed=1, epsilon=0.0).explorations == 0


def test_simulation_is_reproducible_with_a_seed() -> None:
    assert simulate(RATES, n=300, seed=5) == simulate(RATES, n=300, seed=5)
    assert simulate(RATES, n=300, seed=5).picks != simulate(RATES, n=300, seed=6).picks


def test_update_splits_a_fractional_reward_and_keeps_the_old_state() -> None:
    start = BanditState.initial()
    after = update(start, "challenger", 0.25)
    assert after.successes == {"champion": 0.0, "challenger": 0.25}
    assert after.failures == {"champion": 0.0, "challenger": 0.75}
    assert start.successes["challenger"] == 0.0
    # Beta(1, 1) prior: (1 + 0.25) / (2 + 1)
    assert expected_rewards(after) == pytest.approx({"champion": 0.5, "challenger": 1.25 / 3})


@pytest.mark.parametrize(("arm", "reward", "message"), [("other", 1.0, "unknown arm"), ("champion", 1.5, "reward")])
def test_update_rejects_bad_feedback(arm: str, reward: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        update(BanditState.initial(), arm, reward)


@pytest.mark.parametrize("algorithm", ["thompson", "epsilon_greedy"])
def test_strong_evidence_decides_the_choice(algorithm: str) -> None:
    state = BanditState({"champion": 2.0, "challenger": 200.0}, {"champion": 200.0, "challenger": 2.0})
    state = BanditState.from_dict({**state.to_dict(), "algorithm": algorithm, "epsilon": 0.0})
    rng = random.Random(0)
    assert {choose(state, rng) for _ in range(200)} == {"challenger"}


def test_state_round_trips_through_json_and_starts_from_params() -> None:
    state = BanditState.from_params(BanditParams(algorithm="epsilon_greedy", epsilon=0.05, prior=(2.0, 3.0)))
    state = update(update(state, "champion", 1.0), "challenger", 0.5)
    assert BanditState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert (state.algorithm, state.epsilon, state.prior) == ("epsilon_greedy", 0.05, (2.0, 3.0))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"successes": {"a": 0}, "failures": {"b": 0}}, "same non-empty arms"),
        ({"successes": {"a": -1}, "failures": {"a": 0}}, "successes"),
        ({"successes": {"a": 0}, "failures": {"a": 0}, "prior": [0, 1]}, "prior"),
        ({"successes": {"a": 0}, "failures": {"a": 0}, "algorithm": "ucb"}, "algorithm"),
        ({"successes": {"a": 0}, "failures": {"a": 0}, "extra": 1}, "unknown bandit state keys"),
    ],
)
def test_invalid_state_is_rejected(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BanditState.from_dict(data)
