"""A/B test statistics: the test, its interval, the sample size to plan for, and what the fixed split costs.

Concept: A/B testing (C24). Two arms serve a fixed share of users each; the outcome of a prediction
is whether its feedback label agreed with it. The decision is a two-proportion z-test on those
success rates with a confidence interval for the difference, because a p-value alone says nothing
about *how much* better B is. Two guards keep the test honest: the sample size is planned before
the test starts (`labels_needed`, a power calculation) and `decide` refuses any verdict while an arm
has fewer than ``params.monitoring.ab_test.min_samples`` labels, since stopping on an early lucky
peek inflates false positives.

The price of the clean comparison is regret: the worse arm keeps its share of users until the test
ends. `compare_regret` replays that offline against a bandit, reusing the simulators of
``serving/bandit.py``, and adds the policy teams really run: test until the planned sample size,
then send everyone to the winner (explore-then-commit). scipy is imported inside the functions.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from serving.bandit import simulate, simulate_fixed_split

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from core.params import ABTestParams

Verdict = Literal["inconclusive", "b_better", "a_better", "no_difference"]


@dataclass(frozen=True)
class ArmOutcome:
    """Labelled predictions of one arm and how many of them were right."""

    labelled: int
    correct: int

    def __post_init__(self) -> None:
        if not 0 <= self.correct <= self.labelled:
            raise ValueError(f"need 0 <= correct <= labelled, got correct={self.correct}, labelled={self.labelled}")

    @property
    def accuracy(self) -> float:
        return self.correct / self.labelled if self.labelled else float("nan")


@dataclass(frozen=True)
class Comparison:
    """B minus A in success rate: the difference, its confidence interval, the z statistic and the two-sided p."""

    difference: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float
    confidence: float = 0.95


def two_proportion_test(a: ArmOutcome, b: ArmOutcome, alpha: float = 0.05) -> Comparison:
    """Two-proportion z-test (pooled standard error under H0) and a Wald interval for B - A.

    The test pools both arms because under "no difference" they share one rate; the interval does
    not pool, because it describes the difference actually observed.

    Raises:
        ValueError: an arm has no labels.
    """
    from scipy.stats import norm

    if a.labelled == 0 or b.labelled == 0:
        raise ValueError("both arms need at least one label; guard the call with `decide` or collect feedback first")
    pa, pb = a.accuracy, b.accuracy
    pooled = (a.correct + b.correct) / (a.labelled + b.labelled)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / a.labelled + 1 / b.labelled))
    z = (pb - pa) / se_pooled if se_pooled > 0 else 0.0
    se = math.sqrt(pa * (1 - pa) / a.labelled + pb * (1 - pb) / b.labelled)
    half = float(norm.ppf(1 - alpha / 2)) * se
    diff = pb - pa
    return Comparison(diff, diff - half, diff + half, z, float(2 * norm.sf(abs(z))), 1 - alpha)


def labels_needed(baseline: float, drop: float, power: float = 0.8, alpha: float = 0.05) -> int:
    """Labels per arm to detect a change of ``drop`` from the ``baseline`` rate (two-sided, normal approximation).

    n = (z_{1-alpha/2} + z_{power})^2 * (p1 (1 - p1) + p2 (1 - p2)) / drop^2, with p2 = baseline - drop.
    """
    from scipy.stats import norm

    if not 0 < baseline <= 1 or not 0 < drop <= baseline:
        raise ValueError(f"need 0 < drop <= baseline <= 1, got baseline={baseline}, drop={drop}")
    p2 = baseline - drop
    spread = baseline * (1 - baseline) + p2 * (1 - p2)
    return math.ceil((norm.ppf(1 - alpha / 2) + norm.ppf(power)) ** 2 * spread / drop**2)


@dataclass(frozen=True)
class Decision:
    """What the test allows us to say: a verdict, the reason in words, and the test if one ran."""

    verdict: Verdict
    reason: str
    comparison: Comparison | None = None


def decide(a: ArmOutcome, b: ArmOutcome, params: ABTestParams) -> Decision:
    """The A/B verdict, or "inconclusive" while either arm has fewer than ``min_samples`` labels."""
    if min(a.labelled, b.labelled) < params.min_samples:
        return Decision(
            "inconclusive",
            f"not enough data: {a.labelled} and {b.labelled} labels, need {params.min_samples} per arm",
        )
    test = two_proportion_test(a, b, params.alpha)
    if test.p_value >= params.alpha:
        return Decision("no_difference", f"p = {test.p_value:.3f} >= {params.alpha}", test)
    verdict: Verdict = "b_better" if test.difference > 0 else "a_better"
    return Decision(verdict, f"p = {test.p_value:.3f} < {params.alpha}", test)


@dataclass(frozen=True)
class RegretComparison:
    """Mean cumulative regret per policy over several seeded runs (expected correct answers lost)."""

    true_rates: dict[str, float]
    steps: int
    seeds: int
    regret: dict[str, float]  # policy -> mean total regret
    test_length: int  # explore-then-commit: requests spent on the 50/50 test before committing

    def ratio(self, policy: str, baseline: str = "fixed_split") -> float:
        """How many times more regret ``baseline`` accumulates than ``policy``."""
        return self.regret[baseline] / self.regret[policy] if self.regret[policy] > 0 else float("inf")


def explore_then_commit(
    true_rates: Mapping[str, float], steps: int, test_length: int, alpha: float = 0.05, seed: int = 0
) -> float:
    """Total regret of a 50/50 test over ``test_length`` requests, then every request to the winner.

    The first arm is the incumbent (A): it keeps the traffic unless B is significantly better.
    """
    arms = list(true_rates)
    if len(arms) != 2:
        raise ValueError(f"explore-then-commit compares exactly two arms, got {arms}")
    test_length = min(test_length, steps)
    test = simulate_fixed_split(true_rates, test_length, seed=seed)
    rng = random.Random(seed + 1)  # noqa: S311 -- reproducible simulation, not security
    rewards = [rng.random() < true_rates[arm] for arm in test.picks]  # the labels the test would collect
    correct = {arm: sum(r for pick, r in zip(test.picks, rewards, strict=True) if pick == arm) for arm in arms}
    outcome = {arm: ArmOutcome(test.picks.count(arm), correct[arm]) for arm in arms}
    winner = arms[0]
    if min(o.labelled for o in outcome.values()) > 0:
        result = two_proportion_test(outcome[arms[0]], outcome[arms[1]], alpha)
        winner = arms[1] if result.p_value < alpha and result.difference > 0 else arms[0]
    # After the test every request goes to the winner: pseudo-regret grows by a fixed gap per request.
    return test.total_regret + (steps - test_length) * (max(true_rates.values()) - true_rates[winner])


def compare_regret(
    true_rates: Mapping[str, float],
    steps: int,
    params: ABTestParams,
    seeds: Sequence[int] = range(10),
) -> RegretComparison:
    """Mean regret of a fixed 50/50 split, explore-then-commit, and Thompson sampling over the same seeds.

    The explore-then-commit test length is the planned sample size: `labels_needed` per arm from the
    incumbent's (first arm's) rate, which is known before the test, and ``params.min_effect``.
    """
    baseline = next(iter(true_rates.values()))
    per_arm = labels_needed(baseline, min(params.min_effect, baseline), params.power, params.alpha)
    test_length = min(2 * per_arm, steps)
    runs: dict[str, list[float]] = {"fixed_split": [], "explore_then_commit": [], "thompson": []}
    for seed in seeds:
        runs["fixed_split"].append(simulate_fixed_split(true_rates, steps, seed=seed).total_regret)
        runs["explore_then_commit"].append(explore_then_commit(true_rates, steps, test_length, params.alpha, seed))
        runs["thompson"].append(simulate(true_rates, steps, algorithm="thompson", seed=seed).total_regret)
    mean = {policy: sum(values) / len(values) for policy, values in runs.items()}
    return RegretComparison(dict(true_rates), steps, len(runs["thompson"]), mean, test_length)
