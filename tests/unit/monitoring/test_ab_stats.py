"""A/B statistics: the fixed horizon, the score test and Newcombe interval by hand, users as units, regret."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from core.params import ABTestParams
from monitoring.ab_stats import (
    ArmOutcome,
    arm_outcomes,
    compare_regret,
    decide,
    design_effect,
    explore_then_commit,
    horizon,
    labels_needed,
    two_proportion_test,
)

PARAMS = ABTestParams(alpha=0.05, power=0.8, min_effect=0.05, baseline=0.95)
Z95 = 1.959963984540054


def wilson(correct: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval, written out: the building block of Newcombe's interval."""
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_score_test_and_newcombe_interval_match_a_hand_computation() -> None:
    # A: 160/200 = 0.80, B: 180/200 = 0.90. Pooled p = 0.85: SE0 = sqrt(0.85 * 0.15 * (2/200)) = 0.035707,
    # pooled z = 0.10 / 0.035707 = 2.8006; the score test (Miettinen-Nurminen) scales it by sqrt((N-1)/N), N = 400.
    result = two_proportion_test(ArmOutcome(200, 160), ArmOutcome(200, 180), alpha=0.05)
    assert result.difference == pytest.approx(0.10)
    assert result.z == pytest.approx(0.10 / math.sqrt(0.85 * 0.15 * 0.01) * math.sqrt(399 / 400), abs=1e-9)
    assert result.p_value == pytest.approx(math.erfc(abs(result.z) / math.sqrt(2)), abs=1e-12)
    # Newcombe (method 10): B - A -+ the distance from each estimate to the far end of the other's Wilson interval.
    lb, ub = wilson(180, 200)
    la, ua = wilson(160, 200)
    low = 0.10 - math.sqrt((0.90 - lb) ** 2 + (ua - 0.80) ** 2)
    high = 0.10 + math.sqrt((ub - 0.90) ** 2 + (0.80 - la) ** 2)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), abs=1e-9)
    wald = Z95 * math.sqrt(0.16 / 200 + 0.09 / 200)
    assert result.ci_low != pytest.approx(0.10 - wald, abs=1e-4)  # not the Wald interval


def test_the_interval_is_not_wald_so_it_does_not_collapse_when_every_answer_is_right() -> None:
    # Wald's standard error is sqrt(p (1 - p) / n) = 0 at p = 1: it would claim B - A is exactly 0.
    result = two_proportion_test(ArmOutcome(50, 50), ArmOutcome(50, 50))
    assert result.difference == 0
    assert result.ci_low < -0.05
    assert result.ci_high > 0.05
    assert (result.z, result.p_value) == (0.0, 1.0)


def test_labels_needed_is_statsmodels_power_calculation_and_grows_as_expected() -> None:
    # Variance under H0 at the pooled rate 0.925 for the critical value, under H1 for the power:
    # n = (1.959964 * sqrt(2 * 0.925 * 0.075) + 0.841621 * sqrt(0.95 * 0.05 + 0.90 * 0.10))^2 / 0.05^2 = 434.4
    by_hand = (Z95 * math.sqrt(2 * 0.925 * 0.075) + 0.8416212335729143 * math.sqrt(0.0475 + 0.09)) ** 2 / 0.0025
    assert labels_needed(0.95, 0.05, power=0.8, alpha=0.05) == math.ceil(by_hand) == 435
    assert horizon(PARAMS) == 435
    assert labels_needed(0.95, 0.05, power=0.9) > 435
    assert labels_needed(0.95, 0.025) > 4 * 300
    with pytest.raises(ValueError, match="drop <= baseline"):
        labels_needed(0.5, 0.6)


def test_no_verdict_before_the_horizon_however_large_the_gap() -> None:
    """The old rule decided from 100 labels on: A 95/100 vs B 85/100 (p = 0.018) was 'a_better'. Now it waits."""
    early = decide(ArmOutcome(100, 95), ArmOutcome(100, 85), PARAMS)
    assert early.verdict == "inconclusive"
    assert early.comparison is None
    assert "335 more in A, 335 more in B" in early.reason
    one_short = decide(ArmOutcome(435, 435), ArmOutcome(434, 300), PARAMS)
    assert one_short.verdict == "inconclusive"
    assert "1 more in B" in one_short.reason


def test_more_labels_than_the_horizon_are_refused_so_a_later_look_is_not_a_new_test() -> None:
    with pytest.raises(ValueError, match="fixed horizon of 435"):
        decide(ArmOutcome(600, 570), ArmOutcome(600, 530), PARAMS)


def _labels(arm: str, outcomes: list[bool], users: list[str | None], start: int = 0) -> list[dict[str, object]]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {
            "request_id": f"{arm}-{start + i:04d}",
            "arm": arm,
            "correct": ok,
            "user_key": user,
            "label_ts": t0 + timedelta(seconds=start + i),
        }
        for i, (ok, user) in enumerate(zip(outcomes, users, strict=True))
    ]


def test_the_test_uses_the_first_labels_that_arrived_so_later_ones_cannot_change_the_verdict() -> None:
    n = horizon(PARAMS)
    rows = _labels("champion", [True] * n, [None] * n) + _labels(
        "challenger", [i % 10 != 0 for i in range(n)], [None] * n
    )
    at_horizon = decide(*(arm_outcomes(pd.DataFrame(rows), n)[k] for k in ("champion", "challenger")), PARAMS)
    # 300 later labels all wrong for the champion would flip any test that kept counting.
    later = rows + _labels("champion", [False] * 300, [None] * 300, start=n)
    arms = arm_outcomes(pd.DataFrame(later).sample(frac=1, random_state=0), n)  # row order does not matter
    assert arms["champion"] == ArmOutcome(n, n, tuple((1, 1) for _ in range(n)))
    assert decide(arms["champion"], arms["challenger"], PARAMS) == at_horizon
    assert at_horizon.verdict == "a_better"


def test_users_are_the_unit_clustered_labels_widen_the_interval_and_unkeyed_rows_count_alone() -> None:
    n = horizon(PARAMS)
    # A: 87 users with 5 labels each; 80 users always right, 7 always wrong (35 errors).
    users_a = [f"u{i // 5:03d}" for i in range(n)]
    outcomes_a = [int(u[1:]) >= 7 for u in users_a]
    # B: the same 400/435 right, but every label from a different, unkeyed request.
    outcomes_b = [i >= 35 for i in range(n)]
    frame = pd.DataFrame(_labels("champion", outcomes_a, users_a) + _labels("challenger", outcomes_b, [None] * n))
    arms = arm_outcomes(frame, n)
    a, b = arms["champion"], arms["challenger"]
    assert (a.labelled, a.correct, a.users) == (n, 400, 87)
    assert b.users == n
    assert b.design_effect == pytest.approx(1.0, abs=1e-12)
    # All of a user's labels agree, so each user counts about once: the design effect is ~ 5 labels per user.
    assert a.design_effect == pytest.approx(5 * (87 / 86) / (435 / 434), rel=1e-9)
    clustered = two_proportion_test(a, b)
    as_if_independent = two_proportion_test(ArmOutcome(n, 400), b)
    assert clustered.difference == as_if_independent.difference == 0
    assert clustered.ci_high - clustered.ci_low > 1.5 * (as_if_independent.ci_high - as_if_independent.ci_low)
    assert clustered.design_effect > 2  # pooled over both arms under H0: A's users, B's independent requests


def test_design_effect_is_one_for_independent_labels_and_never_below_one() -> None:
    assert design_effect([1] * 10, [1, 0] * 5) == pytest.approx(1.0, abs=1e-12)  # one label per unit
    assert design_effect([2, 2, 2, 2], [1, 1, 1, 1]) == 1.0  # less spread than binomial: floored
    assert design_effect([3, 3], [3, 3]) == 1.0  # no variance at all
    with pytest.raises(ValueError, match="add up"):
        ArmOutcome(10, 5, ((5, 5),))


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        (ArmOutcome(435, 370), ArmOutcome(435, 400), "b_better"),
        (ArmOutcome(435, 400), ArmOutcome(435, 370), "a_better"),
        (ArmOutcome(435, 400), ArmOutcome(435, 398), "no_difference"),
    ],
)
def test_decision_at_the_horizon_follows_the_test(a: ArmOutcome, b: ArmOutcome, verdict: str) -> None:
    decision = decide(a, b, PARAMS)
    assert decision.verdict == verdict
    assert decision.comparison is not None
    assert (decision.comparison.p_value < 0.05) == (verdict != "no_difference")


def test_arm_outcomes_are_validated() -> None:
    with pytest.raises(ValueError, match="correct <= labelled"):
        ArmOutcome(10, 11)
    with pytest.raises(ValueError, match="at least one label"):
        two_proportion_test(ArmOutcome(0, 0), ArmOutcome(10, 9))


def test_bandit_regret_is_a_fraction_of_a_fixed_split() -> None:
    rates = {"champion": 0.95, "challenger": 0.90}
    result = compare_regret(rates, 2000, PARAMS, seeds=range(10))
    # A 50/50 split serves the 5-point-worse arm on half the requests: 0.5 * 0.05 * 2000 = 50 lost answers.
    assert result.regret["fixed_split"] == pytest.approx(50, rel=0.05)
    assert result.ratio("thompson") > 8
    assert result.regret["thompson"] < result.regret["explore_then_commit"] < result.regret["fixed_split"]
    assert result.test_length == 2 * labels_needed(0.95, 0.05)
    assert compare_regret(rates, 2000, PARAMS, seeds=range(10)) == result  # seeded: reproducible


def test_explore_then_commit_switches_to_a_clearly_better_challenger() -> None:
    rates = {"champion": 0.6, "challenger": 0.9}
    # 400 test requests: about 200 on the worse arm at a gap of 0.3 = 60 lost; after that the winner serves all.
    regret = explore_then_commit(rates, 5000, 400, seed=0)
    assert regret == pytest.approx(60, rel=0.15)
    # Had it stayed on the champion, the 4600 requests after the test would have cost 0.3 each.
    assert regret < 0.3 * 4600
