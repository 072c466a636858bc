"""The drift benchmark's arithmetic and its section on tiny windows (speed itself is never asserted)."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.drift_bench import linearity_row, measure_drift, per_thousand, scipy_drift
from bench.harness import BenchEnv, Report, Timing, render_markdown
from core.params import Params
from core.settings import Settings


def test_per_thousand_scales_each_sample() -> None:
    assert per_thousand(10_000, Timing((1.0, 2.0))).samples == (0.1, 0.2)


@pytest.mark.parametrize(("large_s", "passes"), [(5.0, True), (10.0, True), (10.5, False)])
def test_linearity_row_passes_up_to_linear_growth(large_s: float, passes: bool) -> None:
    row = linearity_row(1_000, Timing((1.0,)), 10_000, Timing((large_s,)))
    assert row.passed is passes
    assert row.ratio == pytest.approx(large_s / 10)  # per-1k cost at 10k over per-1k cost at 1k


def test_scipy_baseline_counts_drifted_features(iris_frame: pd.DataFrame) -> None:
    shifted = iris_frame.assign(sepal_length=iris_frame["sepal_length"] + 2.0)
    features = ["sepal_length", "petal_length"]
    assert scipy_drift(iris_frame, iris_frame, features) == 0
    assert scipy_drift(iris_frame, shifted, features) == 1


@pytest.mark.slow
def test_drift_section_on_small_windows(settings: Settings, params: Params) -> None:
    section = measure_drift(BenchEnv(settings, params, say=lambda _: None), sizes=(400, 200))
    names = [row.what for row in section.rows]
    assert names[:2] == ["data drift, 200 rows", "data drift, 400 rows"]  # sorted by size
    assert "`data_drift` cost per 1k rows, 400 vs 200 rows" in names
    assert all(row.subject_time is not None for row in section.rows)
    assert any("no false alarm" in note or "drifted" in note for note in section.notes)
    assert "## 1. Data drift" in render_markdown(Report([section], {}, {}, "now", 0.0))
