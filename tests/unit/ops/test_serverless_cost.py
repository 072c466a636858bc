"""The serverless cost arithmetic: each part is the stated price times the stated usage."""

from __future__ import annotations

import pytest

from ops.serverless_cost import FunctionPrices, billed_seconds, breakeven_millions_per_month, cost_per_million

PRICES = FunctionPrices()


def test_durations_are_billed_in_whole_milliseconds() -> None:
    assert billed_seconds(0.0021, PRICES) == pytest.approx(0.003)
    assert billed_seconds(0.003, PRICES) == pytest.approx(0.003)
    assert billed_seconds(0.0, PRICES) == pytest.approx(0.001)  # never less than one step


def test_a_million_requests_at_one_gb_and_three_ms() -> None:
    cost = cost_per_million(0.003, 1.0, 4.0, 1000, PRICES)
    assert cost.requests == pytest.approx(0.20)
    assert cost.duration == pytest.approx(1e6 * 0.003 * 0.0000166667)  # 3,000 GB-s = $0.05
    assert cost.cold_starts == pytest.approx(1000 * 4.0 * 0.0000166667)  # 4,000 GB-s = $0.067
    assert cost.gateway == pytest.approx(1.00)
    assert cost.total == pytest.approx(0.20 + 0.05 + 0.0667 + 1.00, abs=1e-3)


def test_breakeven_is_the_pods_monthly_cost_over_the_function_cost_per_million() -> None:
    assert breakeven_millions_per_month(50.0, 1.25) == pytest.approx(40.0)
