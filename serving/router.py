"""Traffic routing: which model answers this request, and why (C21-C25, C27).

Every progressive-delivery strategy reduces to one pure decision per request, made here from a
`RoutingState` and a routing key; the API and the rollout controller only read and write the state.

- **Canary / A/B** use consistent hashing: the key (``X-User-Id``, else the request id) maps to a
  uniform bucket in [0, 1) and the challenger serves iff ``bucket < weight``. That is *sticky* (a
  key lands in the same bucket in every worker and replica, because the hash is blake2b and not
  Python's per-process salted ``hash()``) and *monotone* (raising the weight only adds buckets below
  the threshold, so users move champion → challenger, never back) — something weighted subsets in a
  service mesh cannot promise. A/B hashes with another salt, so an A/B arm says nothing about a
  canary arm.
- **Blue-green** serves the alias of the active slot; the idle slot is previewed by override and the
  switch is one new state (atomic: a worker sees the old state or the new one, never a mix).
- **Shadow** always serves the champion and names the challenger to score off the response path.
- **Bandit** serves the arm chosen by ``serving.bandit`` from feedback rewards.

State is immutable plain data with a ``version`` that every change increments, so a shared store
can apply updates with compare-and-swap instead of last-writer-wins. A *paused* rollout holds its
weight, as Argo Rollouts does: pausing stops the controller from stepping, it must not reshuffle
users; only an abort (weight 0) sends traffic back to the champion.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:
    from collections.abc import Mapping

    from core.params import RoutingParams

Strategy = Literal["canary", "blue_green", "shadow", "ab", "bandit"]
# What a request that chose its own model is logged under instead of the strategy: forced by X-Force-Arm,
# or pinned to a version (/v2/.../versions/{v}/infer). No analysis, test or monitoring window reads them.
Steered = Literal["forced", "pinned"]
FORCED: Steered = "forced"
PINNED: Steered = "pinned"
STEERED: tuple[Steered, ...] = (FORCED, PINNED)
Arm = Literal["champion", "challenger"]
Slot = Literal["blue", "green"]

STRATEGIES: tuple[Strategy, ...] = ("canary", "blue_green", "shadow", "ab", "bandit")
CHAMPION: Arm = "champion"
CHALLENGER: Arm = "challenger"
ARMS: tuple[Arm, ...] = (CHAMPION, CHALLENGER)
SLOTS: tuple[Slot, ...] = ("blue", "green")
OVERRIDES: tuple[str, ...] = (*ARMS, *SLOTS)
CANARY_SALT = "canary"
AB_SALT = "ab"


def bucket(key: str, salt: str = CANARY_SALT) -> float:
    """Map a routing key to a uniform float in [0, 1), identical in every process and Python run.

    Args:
        key: The routing key (user id or request id).
        salt: Separates independent assignments (canary vs A/B); at most 16 bytes.
    """
    digest = hashlib.blake2b(key.encode(), digest_size=8, person=salt.encode()).digest()
    # Keep the top 53 bits: a float holds them exactly, so the result can never round up to 1.0.
    return (int.from_bytes(digest, "big") >> 11) / float(1 << 53)


def _check_fraction(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


@dataclass(frozen=True)
class RoutingState:
    """Live routing configuration shared by all workers; never mutated, replaced by a new version."""

    strategy: Strategy = "canary"
    canary_weight: float = 0.0
    ab_split: float = 0.5
    active_slot: Slot = "blue"
    slots: dict[str, str] = field(default_factory=lambda: {"blue": CHAMPION, "green": CHALLENGER})
    paused: bool = False
    version: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {self.strategy!r}")
        _check_fraction("canary_weight", self.canary_weight)
        _check_fraction("ab_split", self.ab_split)
        if self.active_slot not in SLOTS:
            raise ValueError(f"active_slot must be one of {', '.join(SLOTS)}; got {self.active_slot!r}")
        aliases = list(self.slots.values())
        if sorted(self.slots) != sorted(SLOTS) or not all(aliases) or len(set(aliases)) != 2:
            raise ValueError(f"slots must map blue and green to two different aliases, got {self.slots!r}")
        if not isinstance(self.paused, bool):
            raise ValueError(f"paused must be true or false, got {self.paused!r}")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            raise ValueError(f"version must be a non-negative integer, got {self.version!r}")

    @classmethod
    def from_params(cls, params: RoutingParams) -> RoutingState:
        """The state a fresh deployment starts from: the ``routing:`` section of params.yaml."""
        return cls(strategy=params.strategy, canary_weight=params.canary_weight, ab_split=params.ab_split)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutingState:
        """Rebuild a state from `to_dict` output; missing keys take defaults, unknown keys are errors."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown routing state keys {sorted(unknown)}; remove them or upgrade the service")
        values = dict(data)
        if "slots" in values:
            values["slots"] = dict(values["slots"])
        return cls(**values)


@dataclass(frozen=True)
class Decision:
    """Where one request goes and why (logged with the prediction)."""

    arm: Arm
    served_alias: str
    strategy: Strategy | Steered
    shadow_alias: str | None
    reason: str


def _arm_of(alias: str) -> Arm:
    # Metrics are kept per arm: the stable alias is the champion arm, anything else is a candidate.
    return CHAMPION if alias == CHAMPION else CHALLENGER


def _forced(state: RoutingState, override: str) -> Decision:
    choice = override.strip().lower()
    if choice not in OVERRIDES:
        raise ValueError(f"override must be one of {', '.join(OVERRIDES)}; got {override!r}")
    # A forced request is for debugging or a preview: it is never mirrored, so it cannot skew shadow stats,
    # and it is logged as "forced", not as the strategy, so no analysis of that strategy counts it.
    if choice in ARMS:
        return Decision(cast(Arm, choice), choice, FORCED, None, f"header override -> {choice}")
    alias = state.slots[choice]
    return Decision(_arm_of(alias), alias, FORCED, None, f"header override -> {choice} slot ({alias})")


def _threshold(state: RoutingState, key: str, salt: str, weight: float, name: str) -> Decision:
    value = bucket(key, salt)
    arm = CHALLENGER if value < weight else CHAMPION
    sign = "<" if arm == CHALLENGER else ">="
    held = " (rollout paused, weight held)" if state.paused else ""
    return Decision(arm, arm, state.strategy, None, f"{salt} bucket {value:.3f} {sign} {name} {weight:.3f}{held}")


def route(
    state: RoutingState, routing_key: str, override: str | None = None, bandit_choice: str | None = None
) -> Decision:
    """Decide which alias serves a request.

    Args:
        state: The current routing state.
        routing_key: ``X-User-Id`` if the client sent one, else the request id.
        override: A forced arm or slot (header ``X-Force-Arm``); wins in every strategy.
        bandit_choice: The arm `serving.bandit.choose` picked; required when the strategy is bandit.

    Raises:
        ValueError: Empty routing key, invalid override, or a missing/invalid bandit choice.
    """
    if not routing_key:
        raise ValueError("routing_key must be a non-empty string: pass X-User-Id or the request id")
    if override is not None:
        return _forced(state, override)
    if state.strategy == "canary":
        return _threshold(state, routing_key, CANARY_SALT, state.canary_weight, "weight")
    if state.strategy == "ab":
        return _threshold(state, routing_key, AB_SALT, state.ab_split, "split")
    if state.strategy == "blue_green":
        alias = state.slots[state.active_slot]
        return Decision(_arm_of(alias), alias, state.strategy, None, f"blue-green active slot {state.active_slot}")
    if state.strategy == "shadow":
        return Decision(CHAMPION, CHAMPION, state.strategy, CHALLENGER, "shadow: champion serves, challenger mirrored")
    if bandit_choice not in ARMS:
        raise ValueError(f"bandit strategy needs bandit_choice in {', '.join(ARMS)}; got {bandit_choice!r}")
    arm = cast(Arm, bandit_choice)
    return Decision(arm, arm, state.strategy, None, f"bandit chose {arm}")


def switch_slot(state: RoutingState) -> RoutingState:
    """Blue-green switch (and switch-back): the other slot becomes active in one new state."""
    other: Slot = "green" if state.active_slot == "blue" else "blue"
    return replace(state, active_slot=other, version=state.version + 1)


def with_weight(state: RoutingState, weight: float) -> RoutingState:
    """A new state with the canary weight set (ValueError naming ``canary_weight`` if outside [0, 1])."""
    return replace(state, canary_weight=weight, version=state.version + 1)


def with_ab_split(state: RoutingState, split: float) -> RoutingState:
    """A new state with the A/B share of the challenger set."""
    return replace(state, ab_split=split, version=state.version + 1)


def with_strategy(state: RoutingState, strategy: str) -> RoutingState:
    """A new state with another strategy (runtime switch, no redeploy)."""
    return replace(state, strategy=cast(Strategy, strategy), version=state.version + 1)


def with_paused(state: RoutingState, paused: bool) -> RoutingState:
    """A new state with the rollout paused or resumed; the weight is held either way."""
    return replace(state, paused=paused, version=state.version + 1)
