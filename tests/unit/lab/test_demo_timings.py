"""The demo timings page: parsed from the demos' own last line, judged against the budgets."""

from __future__ import annotations

from datetime import UTC, datetime

from lab.demo_timings import BUDGET_S, DemoTiming, render, reported_seconds


def test_the_reported_time_is_the_demos_last_finished_line() -> None:
    out = "1. step\n   demo shadow finished in 9.7 s\nnoise\ndemo canary finished in 17.3 s\n"
    assert reported_seconds(out) == 17.3
    assert reported_seconds("Traceback (most recent call last):") is None


def test_every_demo_has_the_same_wall_time_budget_the_story_included() -> None:
    just_over = BUDGET_S + 0.1
    assert DemoTiming("canary", ("C21",), 10.0, just_over, 0).verdict == f"over {BUDGET_S:.0f} s"
    assert DemoTiming("loop", ("C01",), 29.0, just_over, 0).verdict == f"over {BUDGET_S:.0f} s"
    assert DemoTiming("loop", ("C01",), 28.0, BUDGET_S, 0).verdict == "within budget"
    assert DemoTiming("k8s", (), None, 1.0, 2).verdict == "failed (exit 2)"


def test_the_page_lists_every_demo_and_names_the_ones_over_budget() -> None:
    timings = [
        DemoTiming("canary", ("C21", "C26"), 17.3, 18.2, 0),
        DemoTiming("retrain-loop", ("C37",), 31.0, 33.5, 0),
    ]
    page = render(timings, {"cores": "2"}, datetime(2026, 12, 1, 7, 0, tzinfo=UTC))
    assert "| `mlops-lab demo canary` | C21, C26 | 17.3 s | 18.2 s | within budget |" in page
    assert "| `mlops-lab demo retrain-loop` | C37 | 31.0 s | 33.5 s | over 30 s |" in page
    assert "Over budget or failed: retrain-loop." in page
    assert "2026-12-01 07:00 UTC" in page
