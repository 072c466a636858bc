"""A/B statistics: hand-checked test and sample size, the minimum-sample guard, and the regret of a fixed split."""

from __future__ import annotations

import pytest

from core.params import ABTestParams
from monitoring.ab_stats import (
    ArmOutcome,
    compare_regret,
    decide,
    explore_then_commit,
    labels_needed,
    two_proportion_test,
)

PARAMS = ABTestParams(alpha=0.05, power=0.8, min_effect=0.05, min_samples=100)


def test_two_proportion_test_and_interval_match_a_hand_computation() -> None:
    # A: 160/200 = 0.80, B: 180/200 = 0.90. Pooled p = 0.85: SE0 = sqrt(0.85 * 0.15 * (2/200)) = 0.035707.
    # z = 0.10 / 0.035707 = 2.8006, two-sided p = 0.0051. Unpooled SE = sqrt(0.16/200 + 0.09/200) = 0.035355;
    # a 90 % interval uses z = 1.644854: 0.10 +- 0.058155.
    result = two_proportion_test(ArmOutcome(200, 160), ArmOutcome(200, 180), alpha=0.10)
    assert result.difference == pytest.approx(0.10)
    assert result.z == pytest.approx(2.8006, abs=1e-4)
    assert result.p_value == pytest.approx(0.0051, abs=1e-4)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.10 - 0.058155, 0.10 + 0.058155), abs=1e-6)
    assert result.confidence == pytest.approx(0.90)


def test_labels_needed_matches_the_formula_by_hand() -> None:
    # (1.959964 + 0.841621)^2 * (0.95 * 0.05 + 0.90 * 0.10) / 0.05^2 = 7.848876 * 0.1375 / 0.0025 = 431.69 -> 432
    assert labels_needed(0.95, 0.05, power=0.8, alpha=0.05) == 432
    # more power or a smaller effect costs more labels
    assert labels_needed(0.95, 0.05, power=0.9) > 432
    assert labels_needed(0.95, 0.025) > 4 * 300
    with pytest.raises(ValueError, match="drop <= baseline"):
        labels_needed(0.5, 0.6)


def test_guard_says_inconclusive_below_the_minimum_per_arm() -> None:
    decision = decide(ArmOutcome(99, 99), ArmOutcome(500, 250), PARAMS)  # a huge gap, but A has 99 labels
    assert decision.verdict == "inconclusive"
    assert decision.comparison is None
    assert "need 100 per arm" in decision.reason


def test_the_guard_is_a_floor_not_the_planned_sample_size_so_an_early_look_can_decide() -> None:
    """A limit we state, not fix: `decide` answers from min_samples on and keeps no record of earlier looks."""
    planned = labels_needed(0.95, 0.05, power=PARAMS.power, alpha=PARAMS.alpha)
    assert planned == 432 > PARAMS.min_samples
    # A 95/100, B 85/100: pooled SE = sqrt(0.9 * 0.1 * 2/100) = 0.0424, z = 2.36, p = 0.018, at 100 of 432 planned.
    early = decide(ArmOutcome(100, 95), ArmOutcome(100, 85), PARAMS)
    assert early.verdict == "a_better"
    assert early.comparison is not None
    assert early.comparison.p_value == pytest.approx(0.018, abs=1e-3)


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        (ArmOutcome(200, 160), ArmOutcome(200, 180), "b_better"),
        (ArmOutcome(200, 180), ArmOutcome(200, 160), "a_better"),
        (ArmOutcome(200, 170), ArmOutcome(200, 172), "no_difference"),
    ],
)
def test_decision_follows_the_test(a: ArmOutcome, b: ArmOutcome, verdict: str) -> None:
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
    # Measured with these seeds: Thompson 3.0 (16.6x less), explore-then-commit 21.5 (test of 864 requests).
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
