"""Replicas and cost vs peak: the curve is the plan's own arithmetic at each peak, the picture draws the
curve and marks the committed plan, and `mlops-lab capacity` writes it next to docs/capacity.md, which embeds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.capacity import build_plan, capacity_curve, plan_capacity
from ops.capacity_docs import PICTURE, REPORT, write_capacity_docs
from ops.capacity_plot import plot_capacity
from tests.system_tools import system_tool
from tests.unit.ops.test_capacity import inputs


def test_the_curve_is_the_plan_at_each_peak_and_passes_through_the_planned_one() -> None:
    knobs = inputs()
    curve = capacity_curve(1000.0, knobs)
    assert curve.planned == plan_capacity(1000.0, knobs)
    assert curve.plans[curve.peaks.index(500.0)] == curve.planned
    for peak, plan in zip(curve.peaks, curve.plans, strict=True):
        assert plan == plan_capacity(1000.0, knobs | {"load": knobs["load"] | {"peak_rps": peak}})
    replicas = [p.replicas for p in curve.plans]
    assert replicas == sorted(replicas)
    assert replicas[0] == 2  # the availability floor
    assert replicas[-1] > 2  # the range reaches past what the floor's full-size pods carry (2 x 1000 x 0.5)
    assert curve.peaks[-1] >= 3 * 2 * 1000 * 0.5


def test_the_picture_draws_the_curve_and_marks_the_plan(tmp_path: Path) -> None:
    curve = capacity_curve(1000.0, inputs())
    plotted = plot_capacity(curve, tmp_path / "capacity.png")
    assert (tmp_path / "capacity.png").stat().st_size > 10_000
    assert plotted["peak_rps"] == curve.peaks
    assert plotted["replicas"] == [p.replicas for p in curve.plans]
    assert plotted["monthly_cost"] == pytest.approx([p.replicas * p.pod_cost_hour * 730 for p in curve.plans])
    plan = curve.planned
    assert plotted["planned"] == pytest.approx([500.0, plan.replicas, plan.replicas * plan.pod_cost_hour * 730])


def test_the_capacity_command_writes_the_picture_next_to_the_report_it_embeds_in(tmp_path: Path) -> None:
    system_tool("kubectl")
    report, patch = tmp_path / "docs" / "capacity.md", tmp_path / "capacity-patch.yaml"
    report.parent.mkdir()
    said = write_capacity_docs(report, patch)
    assert (report.parent / PICTURE).stat().st_size > 10_000
    assert f"]({PICTURE})" in report.read_text()
    assert report.read_text() == REPORT.read_text()  # the committed report embeds the same picture
    plan, _, _ = build_plan()
    assert f"{plan.replicas} pods x {plan.cpu_request_m}m" in said
    assert (REPORT.parent / PICTURE).exists()  # committed with it
