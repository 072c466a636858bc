"""A/B test statistics: a fixed-horizon test with the user as the unit, its interval, and what the split costs.

Concept: A/B testing (C24). Two arms serve a fixed share of users each (the router hashes
``X-User-Id``); the outcome of a prediction is whether its feedback label agreed with it. The rule is
**fixed-horizon**, not sequential: the sample size per arm is planned before the test from params
(``monitoring.ab_test``: baseline accuracy, minimum detectable effect, alpha, power) by statsmodels'
power calculation (`labels_needed`), and `decide` gives no verdict before both arms have that many
labels ("inconclusive", with how many are missing). At the horizon it runs one test on exactly the
first ``horizon`` labels per arm in the order the labels arrived (`arm_outcomes` cuts them), so
looking again later returns the same verdict: however often it is called, there is one test, and
its false-positive rate is alpha. ``mlops-lab study ab`` (bench/ab_study.py) measures that under the
looks the product takes and shows what peeking with an unadjusted test would cost.

The unit is the user, not the request: users are randomised, and one user's predictions are
correlated (some users' inputs are harder), so treating every label as independent understates the
variance. The estimand stays the accuracy over labelled predictions, and its variance is the
cluster-robust (ratio-estimator) one over users: the design effect is that variance over the
binomial one, measured under H0 around the pooled rate and shared by both arms, and both arms'
labelled and correct counts are divided by it (the Rao-Scott adjustment) before
statsmodels' score test (``test_proportions_2indep``, method "score") and Newcombe's hybrid-score
interval for B - A (``confint_proportions_2indep``, method "newcomb"). With one label per user the
design effect is ~1 and this is the plain two-proportion test. Users are the pseudonymous
``user_key`` of the prediction log (a keyed hash of ``X-User-Id``); a row without one is its own unit
(the request), which is right only if such requests are independent, so say so when reading a result.

The price of the clean comparison is regret: the worse arm keeps its share of users until the test
ends. `compare_regret` replays that offline against a bandit, reusing the simulators of
``serving/bandit.py``, and adds the policy teams really run: test until the planned sample size,
then send everyone to the winner (explore-then-commit). statsmodels is imported inside the functions.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from serving.bandit import simulate, simulate_fixed_split

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

    from core.params import ABTestParams

Verdict = Literal["inconclusive", "b_better", "a_better", "no_difference"]
Unit = tuple[int, int]  # one user's (labelled, correct)


@dataclass(frozen=True)
class ArmOutcome:
    """Labelled predictions of one arm and how many were right; ``units`` splits them per user.

    ``units`` is one (labelled, correct) pair per user (a row without a user key counts as a user of its
    own); None means every label is its own unit (independent labels).
    """

    labelled: int
    correct: int
    units: tuple[Unit, ...] | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.correct <= self.labelled:
            raise ValueError(f"need 0 <= correct <= labelled, got correct={self.correct}, labelled={self.labelled}")
        if self.units is not None and (
            sum(n for n, _ in self.units) != self.labelled or sum(c for _, c in self.units) != self.correct
        ):
            raise ValueError("the units' labelled and correct counts must add up to the arm's")

    @property
    def accuracy(self) -> float:
        return self.correct / self.labelled if self.labelled else float("nan")

    @property
    def users(self) -> int:
        """Independent units: users (or unkeyed requests), or every label when ``units`` is None."""
        return len(self.units) if self.units is not None else self.labelled

    def unit_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(labelled, correct) per unit as arrays; one unit per label when ``units`` is None."""
        if self.units is None:
            return np.ones(self.labelled), np.r_[np.ones(self.correct), np.zeros(self.labelled - self.correct)]
        counts = np.array(self.units, dtype=float).reshape(-1, 2)
        return counts[:, 0], counts[:, 1]

    @property
    def design_effect(self) -> float:
        """This arm's cluster-robust variance over the binomial one, around its own rate (>= 1; 1 without units)."""
        return 1.0 if self.units is None or not self.units else float(design_effect(*self.unit_counts()))


def _spreads(labelled: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per arm (last axis: units): K / (K - 1) * sum_i (c_i - p n_i)^2 around the arm's own rate p, N, K."""
    n_i, c_i = np.asarray(labelled, dtype=float), np.asarray(correct, dtype=float)
    total, k = n_i.sum(axis=-1), (n_i > 0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = c_i.sum(axis=-1) / total
        spread = k / (k - 1) * ((c_i - p[..., None] * n_i) ** 2).sum(axis=-1)
    return spread, total, k


def design_effect(labelled: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Per arm (last axis: units), Var_cluster / Var_binomial of the arm's accuracy p = sum(c) / sum(n).

    Var_cluster is the ratio estimator's sandwich variance over the K units with labels,
    K / (K - 1) * sum_i (c_i - p n_i)^2 / N^2; Var_binomial is p (1 - p) / (N - 1), the same
    estimator when every unit has one label, so independent labels give exactly 1. Floored at 1:
    noise must not make the test less careful than the independent one. Vectorised over leading axes.
    """
    spread, total, k = _spreads(labelled, correct)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.asarray(correct, dtype=float).sum(axis=-1) / total
        binomial = total / (total - 1) * total * p * (1 - p)
        ratio = spread / binomial
    return np.where((binomial > 0) & (k > 1), np.maximum(ratio, 1.0), 1.0)


def pooled_design_effect(
    labelled_a: np.ndarray, correct_a: np.ndarray, labelled_b: np.ndarray, correct_b: np.ndarray
) -> np.ndarray:
    """The design effect both arms share: their cluster spreads over the binomial spread at the pooled rate.

    (S_A + S_B) / (N_A / (N_A - 1) N_A p0 (1 - p0) + the same for B), S as in `design_effect` (around
    each arm's own rate, so a real difference between the arms does not count as clustering), p0 the
    pooled rate the score test assumes under H0; floored at 1, exactly 1 for independent labels. One
    design effect per arm, each over its own binomial variance, moves with the arm's own estimate (an
    arm that happened to draw few of the hard users looks better and less variable at once) and let
    the false-positive rate creep above alpha in the study (about 0.060 at alpha 0.05).
    """
    sa, size_a, ka = _spreads(labelled_a, correct_a)
    sb, size_b, kb = _spreads(labelled_b, correct_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (np.asarray(correct_a, dtype=float).sum(axis=-1) + np.asarray(correct_b, dtype=float).sum(axis=-1)) / (
            size_a + size_b
        )
        binomial = (size_a**2 / (size_a - 1) + size_b**2 / (size_b - 1)) * pooled * (1 - pooled)
        ratio = (np.where(ka > 1, sa, 0.0) + np.where(kb > 1, sb, 0.0)) / binomial
    return np.where((binomial > 0) & np.isfinite(ratio), np.maximum(ratio, 1.0), 1.0)


@dataclass(frozen=True)
class Comparison:
    """B minus A in success rate: the difference, its Newcombe interval, the score statistic and the two-sided p.

    ``design_effect``: how much clustering by user inflated the variance (1: none); both arms' counts
    were divided by it before the test.
    """

    difference: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float
    confidence: float = 0.95
    design_effect: float = 1.0


def score_test(
    correct_a: np.ndarray,
    labelled_a: np.ndarray,
    correct_b: np.ndarray,
    labelled_b: np.ndarray,
    alpha: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """B - A, Newcombe interval (low, high), score z and two-sided p; vectorised, counts may be fractional.

    statsmodels' ``test_proportions_2indep(method="score")`` (the score test of the difference, the
    variance restricted to H0) and ``confint_proportions_2indep(method="newcomb")`` (the difference of
    two Wilson intervals, Newcombe's method 10). Fractional counts are the design-effect-adjusted ones.
    When both arms are all right (or all wrong) there is no variance: z = 0, p = 1.
    """
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

    ca, na, cb, nb = (np.asarray(v, dtype=float) for v in (correct_a, labelled_a, correct_b, labelled_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        result = test_proportions_2indep(cb, nb, ca, na, method="score", return_results=True)
        low, high = confint_proportions_2indep(cb, nb, ca, na, method="newcomb", alpha=alpha)
    z = np.nan_to_num(np.asarray(result.statistic, dtype=float), nan=0.0)
    p = np.nan_to_num(np.asarray(result.pvalue, dtype=float), nan=1.0)
    return cb / nb - ca / na, np.asarray(low, dtype=float), np.asarray(high, dtype=float), z, p


def two_proportion_test(a: ArmOutcome, b: ArmOutcome, alpha: float = 0.05) -> Comparison:
    """Score test and Newcombe interval for B - A, both arms' counts divided by the pooled design effect.

    Without units in either arm (independent labels) the design effect is 1: the plain test.

    Raises:
        ValueError: an arm has no labels.
    """
    if a.labelled == 0 or b.labelled == 0:
        raise ValueError("both arms need at least one label; guard the call with `decide` or collect feedback first")
    deff = 1.0
    if a.units is not None or b.units is not None:
        deff = float(pooled_design_effect(*a.unit_counts(), *b.unit_counts()))
    diff, low, high, z, p = score_test(
        np.array([a.correct / deff]),
        np.array([a.labelled / deff]),
        np.array([b.correct / deff]),
        np.array([b.labelled / deff]),
        alpha,
    )
    return Comparison(float(diff[0]), float(low[0]), float(high[0]), float(z[0]), float(p[0]), 1 - alpha, deff)


def labels_needed(baseline: float, drop: float, power: float = 0.8, alpha: float = 0.05) -> int:
    """Labels per arm to detect a change of ``drop`` from the ``baseline`` rate with a two-sided test.

    statsmodels' ``samplesize_proportions_2indep_onetail``: the normal approximation with the variance
    under H0 (both arms at their pooled rate) for the critical value and under H1 for the power,
    which is what the score test uses. Assumes independent labels (one per user); clustered users
    need about the design effect times as many.
    """
    from statsmodels.stats.proportion import samplesize_proportions_2indep_onetail

    if not 0 < baseline <= 1 or not 0 < drop <= baseline:
        raise ValueError(f"need 0 < drop <= baseline <= 1, got baseline={baseline}, drop={drop}")
    n = samplesize_proportions_2indep_onetail(-drop, baseline, power, alpha=alpha, alternative="two-sided")
    return math.ceil(float(n))


def horizon(params: ABTestParams) -> int:
    """The planned labels per arm: `labels_needed` for ``params.min_effect`` below ``params.baseline``."""
    return labels_needed(params.baseline, min(params.min_effect, params.baseline), params.power, params.alpha)


def arm_outcomes(frame: pd.DataFrame, planned: int) -> dict[str, ArmOutcome]:
    """Per arm, the first ``planned`` labels in the order they arrived, with their per-user counts.

    ``frame`` is ``serving.log_reader.labelled_window`` output (columns arm, correct, label_ts,
    request_id, user_key). Labels are ordered by arrival (``label_ts``, then request id): once an arm
    has ``planned`` labels, later ones cannot change which labels the test uses. A row without a
    user key is a unit of its own.
    """
    if frame.empty:
        return {}
    ordered = frame.sort_values(["label_ts", "request_id"], kind="stable")
    fallback = "request:" + ordered["request_id"].astype(str)
    keys = ordered.get("user_key")
    ordered = ordered.assign(unit=fallback if keys is None else keys.where(keys.notna(), fallback))
    out: dict[str, ArmOutcome] = {}
    for arm, rows in ordered.groupby("arm", sort=True):
        first = rows.head(planned)
        per_user = first.groupby("unit", sort=True)["correct"].agg(["size", "sum"])
        units = tuple((int(n), int(c)) for n, c in zip(per_user["size"], per_user["sum"], strict=True))
        out[str(arm)] = ArmOutcome(len(first), int(first["correct"].astype(bool).sum()), units)
    return out


@dataclass(frozen=True)
class Decision:
    """What the test allows us to say: a verdict, the reason in words, and the test if one ran."""

    verdict: Verdict
    reason: str
    comparison: Comparison | None = None


def decide(a: ArmOutcome, b: ArmOutcome, params: ABTestParams) -> Decision:
    """The fixed-horizon verdict: "inconclusive" until both arms have `horizon` labels, then one test on them.

    Raises:
        ValueError: an arm has more labels than the horizon; pass the first ones (`arm_outcomes`),
            else every later look would be a new test on more data (peeking).
    """
    planned = horizon(params)
    if max(a.labelled, b.labelled) > planned:
        raise ValueError(
            f"fixed horizon of {planned} labels per arm, got A {a.labelled}, B {b.labelled}: test exactly the "
            "first ones (monitoring.ab_stats.arm_outcomes), so a later look cannot change the verdict"
        )
    if min(a.labelled, b.labelled) < planned:
        missing = ", ".join(
            f"{planned - o.labelled} more in {arm}" for arm, o in (("A", a), ("B", b)) if o.labelled < planned
        )
        return Decision(
            "inconclusive",
            f"fixed horizon not reached: {a.labelled} and {b.labelled} of {planned} labels per arm; {missing} "
            "before the one test",
        )
    test = two_proportion_test(a, b, params.alpha)
    units = f"{a.users} and {b.users} users, design effect {test.design_effect:.2f}"
    if test.p_value >= params.alpha:
        return Decision("no_difference", f"p = {test.p_value:.3f} >= {params.alpha} at the horizon ({units})", test)
    verdict: Verdict = "b_better" if test.difference > 0 else "a_better"
    return Decision(verdict, f"p = {test.p_value:.3f} < {params.alpha} at the horizon ({units})", test)


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
