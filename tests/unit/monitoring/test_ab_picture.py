"""The A/B picture draws the decision's numbers: its interval, the zero and effect lines, labels vs the horizon."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.params import ABTestParams
from monitoring.ab_picture import ab_series, write_ab_picture
from monitoring.ab_stats import ArmOutcome, decide, horizon

PARAMS = ABTestParams(alpha=0.05, power=0.8, min_effect=0.05, baseline=0.95)
PLANNED = 435  # horizon(PARAMS), written out so a change in the power calculation shows up here


def test_at_the_horizon_the_picture_shows_the_tests_interval(tmp_path: Path) -> None:
    assert horizon(PARAMS) == PLANNED
    a, b = ArmOutcome(PLANNED, 413), ArmOutcome(PLANNED, 391)  # 94.9 % vs 89.9 %
    decision = decide(a, b, PARAMS)
    assert decision.comparison is not None
    out = tmp_path / "reports" / "ab-test" / "ab-interval.png"
    drawn = write_ab_picture(decision, a, b, PARAMS, PLANNED, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn.difference == pytest.approx(decision.comparison.difference)
    assert drawn.interval == pytest.approx((decision.comparison.ci_low, decision.comparison.ci_high))
    assert drawn.reference_lines == pytest.approx((-0.05, 0.0, 0.05))
    assert drawn.labels == (PLANNED, PLANNED)
    assert drawn.planned == PLANNED


def test_before_the_horizon_no_interval_is_drawn_only_the_progress(tmp_path: Path) -> None:
    a, b = ArmOutcome(100, 95), ArmOutcome(120, 100)
    decision = decide(a, b, PARAMS)
    assert decision.verdict == "inconclusive"
    drawn = write_ab_picture(decision, a, b, PARAMS, PLANNED, tmp_path / "ab.png")
    assert drawn == ab_series(decision, a, b, PARAMS, PLANNED)
    assert drawn.interval is None
    assert drawn.labels == (100, 120)
