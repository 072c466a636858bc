"""Routing decisions: canary share, stickiness, monotonicity, A/B independence, blue-green, shadow, overrides."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from core.params import RoutingParams
from serving.router import (
    RoutingState,
    bucket,
    route,
    switch_slot,
    with_ab_split,
    with_paused,
    with_strategy,
    with_weight,
)

REPO = Path(__file__).resolve().parents[3]
N_KEYS = 12_000
TOLERANCE = 0.015  # ±1.5 percentage points; at n = 12,000 that is over 3 standard deviations at p = 0.5
STRATEGIES = ["canary", "blue_green", "shadow", "ab", "bandit"]


@pytest.fixture(scope="module")
def keys() -> list[str]:
    rng = random.Random(20240601)
    return [f"user-{rng.getrandbits(64):016x}" for _ in range(N_KEYS)]


def _challenger_keys(state: RoutingState, keys: list[str]) -> set[str]:
    return {k for k in keys if route(state, k).arm == "challenger"}


@pytest.mark.parametrize("weight", [0.05, 0.10, 0.25, 0.50, 0.90])
def test_canary_share_matches_the_weight(keys: list[str], weight: float) -> None:
    share = len(_challenger_keys(RoutingState(canary_weight=weight), keys)) / len(keys)
    assert share == pytest.approx(weight, abs=TOLERANCE)


def test_weight_zero_and_one_are_exact(keys: list[str]) -> None:
    assert _challenger_keys(RoutingState(canary_weight=0.0), keys) == set()
    assert _challenger_keys(RoutingState(canary_weight=1.0), keys) == set(keys)


def test_canary_decision_names_bucket_and_weight() -> None:
    decision = route(RoutingState(canary_weight=0.1), "user-42")
    assert decision.arm == decision.served_alias == "challenger"
    assert decision.shadow_alias is None
    assert decision.reason == f"canary bucket {bucket('user-42'):.3f} < weight 0.100"


def test_same_key_gets_the_same_arm_on_every_call(keys: list[str]) -> None:
    state = RoutingState(canary_weight=0.3)
    first = [route(state, k).arm for k in keys[:500]]
    assert [route(state, k).arm for k in keys[:500]] == first


def test_buckets_are_identical_in_a_fresh_process_with_another_hash_seed(keys: list[str]) -> None:
    sample = keys[:200]
    code = (
        "import json, sys; from serving.router import bucket; "
        "print(json.dumps([bucket(k) for k in json.load(sys.stdin)]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(sample),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=True,
    )
    assert json.loads(out.stdout) == [bucket(k) for k in sample]


def test_bucket_is_pinned_so_a_release_cannot_reshuffle_users() -> None:
    # Changing the hash would silently move every user to another arm mid-rollout.
    assert bucket("user-42") == pytest.approx(0.03523491605479845, abs=1e-15)
    assert bucket("user-42", "ab") == pytest.approx(0.3548700780435148, abs=1e-15)


def test_raising_the_weight_only_moves_users_to_the_challenger(keys: list[str]) -> None:
    state = RoutingState()
    previous: set[str] = set()
    for weight in [0.0, 0.1, 0.25, 0.5, 0.75, 1.0]:
        state = with_weight(state, weight)
        current = _challenger_keys(state, keys)
        assert previous <= current, f"{len(previous - current)} users moved back to champion at weight {weight}"
        previous = current


@pytest.mark.parametrize("split", [0.2, 0.5])
def test_ab_share_matches_the_split(keys: list[str], split: float) -> None:
    share = len(_challenger_keys(RoutingState(strategy="ab", ab_split=split), keys)) / len(keys)
    assert share == pytest.approx(split, abs=TOLERANCE)


def test_ab_assignment_is_independent_of_canary_assignment(keys: list[str]) -> None:
    canary = _challenger_keys(RoutingState(canary_weight=0.5), keys)
    ab = _challenger_keys(RoutingState(strategy="ab", ab_split=0.5), keys)
    assert canary != ab
    # Independent halves agree on about half of the keys (both or neither on the challenger).
    agreement = sum((k in canary) == (k in ab) for k in keys) / len(keys)
    assert agreement == pytest.approx(0.5, abs=0.03)


def test_blue_green_switch_flips_the_served_alias_and_back() -> None:
    blue = RoutingState(strategy="blue_green")
    assert route(blue, "u1").served_alias == "champion"
    green = switch_slot(blue)
    assert (green.active_slot, green.version) == ("green", 1)
    assert route(green, "u1").served_alias == "challenger"
    assert route(green, "u1").arm == "challenger"
    back = switch_slot(green)
    assert (back.active_slot, back.version) == ("blue", 2)
    assert route(back, "u1").served_alias == "champion"
    assert blue.active_slot == "blue"  # the old state is untouched: workers holding it stay consistent


def test_blue_green_override_previews_the_idle_slot() -> None:
    state = RoutingState(strategy="blue_green", slots={"blue": "champion", "green": "previous"})
    preview = route(state, "u1", override="green")
    assert preview.served_alias == "previous"
    assert preview.arm == "challenger"  # anything but the stable alias is counted as the candidate arm
    assert "green slot" in preview.reason
    assert route(state, "u1").served_alias == "champion"


def test_shadow_always_serves_champion_and_mirrors_to_challenger(keys: list[str]) -> None:
    state = RoutingState(strategy="shadow", canary_weight=0.9)
    decisions = {(d.arm, d.served_alias, d.shadow_alias) for d in (route(state, k) for k in keys[:2000])}
    assert decisions == {("champion", "champion", "challenger")}


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("forced", ["champion", "challenger"])
def test_override_wins_in_every_strategy(strategy: str, forced: str) -> None:
    state = RoutingState(strategy=strategy, canary_weight=0.5)  # type: ignore[arg-type]
    bandit_choice = "challenger" if forced == "champion" else "champion"
    decision = route(state, "u1", override=f" {forced.upper()} ", bandit_choice=bandit_choice)
    assert (decision.arm, decision.served_alias, decision.shadow_alias) == (forced, forced, None)
    assert decision.reason.startswith("header override")


def test_invalid_override_names_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="override must be one of champion, challenger, blue, green"):
        route(RoutingState(), "u1", override="canary")


def test_bandit_serves_the_chosen_arm_and_needs_a_choice() -> None:
    state = RoutingState(strategy="bandit")
    assert route(state, "u1", bandit_choice="challenger").served_alias == "challenger"
    with pytest.raises(ValueError, match="bandit_choice"):
        route(state, "u1")
    with pytest.raises(ValueError, match="bandit_choice"):
        route(state, "u1", bandit_choice="previous")


def test_empty_routing_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="routing_key"):
        route(RoutingState(), "")


def test_paused_rollout_holds_its_weight(keys: list[str]) -> None:
    running = RoutingState(canary_weight=0.25)
    paused = with_paused(running, True)
    assert _challenger_keys(paused, keys) == _challenger_keys(running, keys)
    assert "paused" in route(paused, keys[0]).reason


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: with_weight(s, 1.5), "canary_weight"),
        (lambda s: with_weight(s, float("nan")), "canary_weight"),
        (lambda s: with_ab_split(s, -0.1), "ab_split"),
        (lambda s: with_strategy(s, "round_robin"), "strategy"),
    ],
)
def test_invalid_changes_name_the_field(change: Callable[[RoutingState], RoutingState], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        change(RoutingState())


def test_changes_bump_the_version_and_leave_the_old_state_alone() -> None:
    start = RoutingState()
    changed = with_strategy(with_weight(start, 0.1), "shadow")
    assert (changed.strategy, changed.canary_weight, changed.version) == ("shadow", 0.1, 2)
    assert (start.strategy, start.canary_weight, start.version) == ("canary", 0.0, 0)


def test_state_round_trips_through_json() -> None:
    state = switch_slot(RoutingState(strategy="blue_green", canary_weight=0.25, ab_split=0.3, paused=True))
    assert RoutingState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_from_dict_rejects_unknown_keys_and_bad_slots() -> None:
    with pytest.raises(ValueError, match="unknown routing state keys"):
        RoutingState.from_dict({"strategy": "canary", "weight": 0.1})
    with pytest.raises(ValueError, match="slots"):
        RoutingState.from_dict({"slots": {"blue": "champion", "green": "champion"}})


def test_state_starts_from_params() -> None:
    params = RoutingParams(strategy="ab", canary_weight=0.1, ab_split=0.4)
    state = RoutingState.from_params(params)
    assert (state.strategy, state.canary_weight, state.ab_split, state.version) == ("ab", 0.1, 0.4, 0)
