"""Multi-armed bandit routing: learn which model is better while serving it (C25).

An A/B test holds a fixed split until it ends, so half the users keep getting the worse model the
whole time; that cost is *regret* (reward lost against always serving the best arm). A bandit moves
traffic toward the arm that earns more reward as feedback arrives:

- **Thompson sampling**: each arm's success rate has a Beta(alpha + successes, beta + failures)
  posterior; draw one sample per arm and serve the highest. Uncertain arms still win sometimes
  (exploration), and exploration fades on its own as evidence piles up.
- **Epsilon-greedy**: with probability epsilon serve a uniformly random arm, else the arm with the
  best posterior mean. Simpler, but it explores at the same rate forever.

The defaults follow Seldon's routers (Beta(1, 1) priors, epsilon 0.1). State is plain data — reward
sums per arm — so workers share it through the database; sums are additive, so a store can apply
``successes + reward`` as an increment instead of a read-modify-write race. `simulate` and
`simulate_fixed_split` replay the trade-off offline with seeded randomness for the A/B-vs-bandit demo;
they reward each request at once. In the service a reward arrives with its label (often days later) and
each worker re-reads the sums once per poll, so every request is routed on old evidence:
bench/bandit_study.py (`mlops-lab study bandit`) measures what that, and an arm that drifts, costs.
Routing is per request, not per user: `choose` never sees ``X-User-Id``, so one user can meet both arms.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from core.params import BanditParams

Algorithm = Literal["thompson", "epsilon_greedy"]
ALGORITHMS: tuple[Algorithm, ...] = ("thompson", "epsilon_greedy")
DEFAULT_ARMS = ("champion", "challenger")


def _nonnegative(value: float) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) and value >= 0


@dataclass(frozen=True)
class BanditState:
    """Reward sums per arm plus the Beta prior and the algorithm; replaced, never mutated."""

    successes: dict[str, float]
    failures: dict[str, float]
    prior: tuple[float, float] = (1.0, 1.0)
    algorithm: Algorithm = "thompson"
    epsilon: float = 0.1

    def __post_init__(self) -> None:
        if not self.successes or set(self.successes) != set(self.failures):
            raise ValueError(
                f"successes and failures must name the same non-empty arms, got {list(self.successes)}"
                f" and {list(self.failures)}"
            )
        for name, counts in (("successes", self.successes), ("failures", self.failures)):
            bad = {arm: v for arm, v in counts.items() if not _nonnegative(v)}
            if bad:
                raise ValueError(f"{name} must be finite and >= 0, got {bad}")
        if len(self.prior) != 2 or not all(_nonnegative(p) and p > 0 for p in self.prior):
            raise ValueError(f"prior must be two positive numbers (alpha, beta), got {self.prior!r}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}; got {self.algorithm!r}")
        if not _nonnegative(self.epsilon) or self.epsilon > 1:
            raise ValueError(f"epsilon must be a number in [0, 1], got {self.epsilon!r}")

    @property
    def arms(self) -> tuple[str, ...]:
        """Arm names in a stable order."""
        return tuple(self.successes)

    @classmethod
    def initial(
        cls,
        arms: Sequence[str] = DEFAULT_ARMS,
        *,
        prior: tuple[float, float] = (1.0, 1.0),
        algorithm: Algorithm = "thompson",
        epsilon: float = 0.1,
    ) -> BanditState:
        """A state with no feedback yet: every arm is just its prior."""
        if len(set(arms)) != len(arms):
            raise ValueError(f"arms must be distinct, got {list(arms)}")
        alpha, beta = prior
        return cls({a: 0.0 for a in arms}, {a: 0.0 for a in arms}, (alpha, beta), algorithm, epsilon)

    @classmethod
    def from_params(cls, params: BanditParams, arms: Sequence[str] = DEFAULT_ARMS) -> BanditState:
        """The starting state from the ``routing.bandit`` section of params.yaml."""
        return cls.initial(arms, prior=params.prior, algorithm=params.algorithm, epsilon=params.epsilon)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return {
            "successes": dict(self.successes),
            "failures": dict(self.failures),
            "prior": list(self.prior),
            "algorithm": self.algorithm,
            "epsilon": self.epsilon,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BanditState:
        """Rebuild a state from `to_dict` output."""
        unknown = set(data) - {"successes", "failures", "prior", "algorithm", "epsilon"}
        if unknown:
            raise ValueError(f"unknown bandit state keys {sorted(unknown)}")
        values = dict(data)
        values["successes"] = {k: float(v) for k, v in data["successes"].items()}
        values["failures"] = {k: float(v) for k, v in data["failures"].items()}
        if "prior" in values:
            values["prior"] = tuple(values["prior"])
        return cls(**values)


def expected_rewards(state: BanditState) -> dict[str, float]:
    """Posterior mean success rate per arm: (alpha + successes) / (alpha + beta + trials)."""
    alpha, beta = state.prior
    return {
        arm: (alpha + state.successes[arm]) / (alpha + beta + state.successes[arm] + state.failures[arm])
        for arm in state.arms
    }


def _choose(state: BanditState, rng: random.Random) -> tuple[str, bool]:
    """The chosen arm and whether it was an epsilon-greedy exploration step."""
    if state.algorithm == "thompson":
        alpha, beta = state.prior
        draws = {a: rng.betavariate(alpha + state.successes[a], beta + state.failures[a]) for a in state.arms}
        return max(draws, key=draws.__getitem__), False
    if rng.random() < state.epsilon:
        return rng.choice(state.arms), True
    means = expected_rewards(state)
    best = max(means.values())
    # Break ties at random: a fixed tie-break would always start on the first arm.
    return rng.choice([a for a in state.arms if means[a] == best]), False


def choose(state: BanditState, rng: random.Random) -> str:
    """Pick the arm to serve the next request (seed `rng` for reproducible runs)."""
    return _choose(state, rng)[0]


def update(state: BanditState, arm: str, reward: float) -> BanditState:
    """Record feedback: ``reward`` in [0, 1] adds to successes, ``1 - reward`` to failures.

    Raises:
        ValueError: Unknown arm or a reward outside [0, 1].
    """
    if arm not in state.successes:
        raise ValueError(f"unknown arm {arm!r}; known arms: {', '.join(state.arms)}")
    if not _nonnegative(reward) or reward > 1:
        raise ValueError(f"reward must be a number in [0, 1] (1 = correct prediction), got {reward!r}")
    successes = {**state.successes, arm: state.successes[arm] + reward}
    failures = {**state.failures, arm: state.failures[arm] + (1.0 - reward)}
    return replace(state, successes=successes, failures=failures)


@dataclass(frozen=True)
class SimulationResult:
    """One offline run: which arm served each step and the regret it accumulated."""

    policy: str
    picks: tuple[str, ...]
    regret: tuple[float, ...]  # cumulative pseudo-regret after each step
    explorations: int
    best_arm: str
    final_state: BanditState | None

    @property
    def choices(self) -> dict[str, int]:
        """How many steps each arm served."""
        return dict(Counter(self.picks))

    @property
    def total_regret(self) -> float:
        """Expected reward lost against always serving the best arm."""
        return self.regret[-1]

    def late_share(self, arm: str) -> float:
        """Share of the second half of the steps served by ``arm``."""
        late = self.picks[len(self.picks) // 2 :]
        return late.count(arm) / len(late)


def _check_rates(true_rates: Mapping[str, float], n: int) -> None:
    if not true_rates or not all(_nonnegative(r) and r <= 1 for r in true_rates.values()):
        raise ValueError(f"true_rates must map arms to success rates in [0, 1], got {dict(true_rates)}")
    if n < 2:
        raise ValueError(f"n must be at least 2 steps, got {n}")


def _regret(true_rates: Mapping[str, float], picks: Sequence[str]) -> tuple[float, ...]:
    # Pseudo-regret uses the true rates, so it measures the policy, not the luck of the reward draws.
    best, total, curve = max(true_rates.values()), 0.0, []
    for arm in picks:
        total += best - true_rates[arm]
        curve.append(total)
    return tuple(curve)


def simulate(
    true_rates: Mapping[str, float],
    n: int,
    algorithm: Algorithm = "thompson",
    seed: int = 0,
    epsilon: float = 0.1,
    prior: tuple[float, float] = (1.0, 1.0),
) -> SimulationResult:
    """Run a bandit for ``n`` requests against arms with known success rates (Bernoulli rewards)."""
    _check_rates(true_rates, n)
    rng = random.Random(seed)  # noqa: S311 -- reproducible simulation, not security
    state = BanditState.initial(list(true_rates), prior=prior, algorithm=algorithm, epsilon=epsilon)
    picks: list[str] = []
    explorations = 0
    for _ in range(n):
        arm, explored = _choose(state, rng)
        explorations += explored
        state = update(state, arm, 1.0 if rng.random() < true_rates[arm] else 0.0)
        picks.append(arm)
    best = max(true_rates, key=lambda a: true_rates[a])
    return SimulationResult(algorithm, tuple(picks), _regret(true_rates, picks), explorations, best, state)


def simulate_fixed_split(
    true_rates: Mapping[str, float], n: int, split: Mapping[str, float] | None = None, seed: int = 0
) -> SimulationResult:
    """Route ``n`` requests by a fixed split (an A/B test), for comparing regret with a bandit.

    Args:
        true_rates: Success rate per arm.
        n: Number of requests.
        split: Traffic weight per arm (normalised); equal shares when omitted.
        seed: Seed for the assignment draws.
    """
    _check_rates(true_rates, n)
    arms = list(true_rates)
    weights = [1.0] * len(arms) if split is None else [float(split.get(a, 0.0)) for a in arms]
    if split is not None and (set(split) - set(arms) or any(w < 0 for w in weights) or sum(weights) <= 0):
        raise ValueError(f"split must give non-negative weights to the arms {arms}, got {dict(split)}")
    rng = random.Random(seed)  # noqa: S311 -- reproducible simulation, not security
    picks = rng.choices(arms, weights=weights, k=n)
    best = max(true_rates, key=lambda a: true_rates[a])
    return SimulationResult("fixed_split", tuple(picks), _regret(true_rates, picks), 0, best, None)
