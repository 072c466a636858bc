"""The capacity plan: its arithmetic on round numbers, its parsing of docs/benchmarks.md, and the
prod overlay and docs/capacity.md carrying exactly the plan computed from the committed inputs.

If `make bench` moves the measured throughput enough to change the plan, or someone edits the prod
overlay or k8s/capacity.yaml alone, ``test_prod_overlay_carries_the_plan`` fails and names the number;
the fix is `uv run mlops-lab capacity` and the matching patch in k8s/overlays/prod.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from ops.capacity import (
    BenchmarkParseError,
    ServingRow,
    build_plan,
    canary_traffic_shares,
    load_inputs,
    overlay_mismatches,
    parse_serving_rows,
    pick_row,
    plan_capacity,
    platform_requests,
)
from ops.capacity_docs import REPORT, render_markdown
from ops.k8s_objects import find, render
from tests.system_tools import system_tool

BENCH = """# Benchmarks

## 3. Training

- c=8: ours /v1/predict 1 req/s, p50 1 ms, p99 1 ms (a different section: ignored)

## 4. Serving over HTTP

| table | ignored |

- c=1: ours /v1/predict 800 req/s, p50 900 µs, p99 4.5 ms; bare 1200 req/s, p50 700 µs, p99 1.5 ms.
- c=8: ours /v1/predict 1,000 req/s, p50 7 ms, p99 20 ms; bare 1300 req/s, p50 5 ms, p99 15 ms.
- c=64: ours /v1/predict 1100 req/s, p50 55 ms, p99 1.6 s; bare 1400 req/s, p50 42 ms, p99 941 ms.
- 2 workers, c=8: ours ×2 /v1/predict 2050 req/s, p50 3.5 ms, p99 11 ms; bare ×2 2700 req/s, p50 2.9 ms, p99 6.8 ms.

## 5. Prediction log
"""


def inputs(**changes: Any) -> dict[str, Any]:
    base = {
        "benchmark": {"file": "unused", "subject": "ours /v1/predict", "cores_per_worker": 1.0},
        "load": {"peak_rps": 500, "average_rps": 100, "surge_factor": 2.0},
        "headroom": {"target_cpu_utilization": 0.5},
        "pod": {"workers": 1, "cpu_step_millicores": 50, "memory_request_mib": 1024, "memory_limit_mib": 2048},
        "availability": {"min_replicas": 2},
        "prices": {"vcpu_hour": 0.04, "gib_hour": 0.01, "hours_per_month": 730},
    }
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        base[section][key] = value
    return base


# ---- parsing ---------------------------------------------------------------------------------------------


def test_serving_rows_come_from_the_serving_section_only() -> None:
    rows = parse_serving_rows(BENCH)
    assert rows == [
        ServingRow(1, 1, 800.0, 4.5),
        ServingRow(1, 8, 1000.0, 20.0),
        ServingRow(1, 64, 1100.0, 1600.0),
        ServingRow(2, 8, 2050.0, 11.0),
    ]


def test_the_chosen_row_is_the_one_worker_row_at_the_lowest_concurrency_within_the_latency_budget() -> None:
    rows = parse_serving_rows(BENCH)
    assert pick_row(rows, max_p99_ms=500) == ServingRow(1, 1, 800.0, 4.5)  # faster rows are headroom
    assert pick_row(rows, max_p99_ms=10) == ServingRow(1, 1, 800.0, 4.5)
    slow_alone = [ServingRow(1, 1, 800.0, 30.0), ServingRow(1, 8, 1000.0, 20.0)]
    assert pick_row(slow_alone, max_p99_ms=25) == ServingRow(1, 8, 1000.0, 20.0)  # c=1 breaks the budget here
    with pytest.raises(BenchmarkParseError, match="p99 <= 1"):
        pick_row(rows, max_p99_ms=1)


def test_a_benchmark_file_without_the_serving_figures_is_refused_with_the_fix() -> None:
    with pytest.raises(BenchmarkParseError, match="make bench"):
        parse_serving_rows("# Benchmarks\n\n## 1. CLI start-up\n")
    with pytest.raises(BenchmarkParseError, match="no 'ours /v1/predict N req/s'"):
        parse_serving_rows("## 4. Serving over HTTP\n\n- c=1: bare 10 req/s, p50 1 ms, p99 2 ms\n")


# ---- arithmetic, checked by hand ---------------------------------------------------------------------------


def test_plan_at_a_modest_peak_is_set_by_the_availability_floor() -> None:
    plan = plan_capacity(1000.0, inputs())
    # a whole core at 50 % carries 500 req/s: one pod would do, the floor says two, each needs 250 req/s
    assert plan.replicas == 2
    assert plan.cpu_request_m == 500  # 250 req/s / (1000 req/s per core x 0.5) = 0.5 core
    assert plan.rps_per_pod == pytest.approx(250.0)
    assert (plan.hpa_min, plan.hpa_max) == (2, 4)  # 100 req/s needs 1 pod -> floor 2; 1000 / 250 = 4
    assert plan.pod_cost_hour == pytest.approx(0.5 * 0.04 + 1.0 * 0.01)
    assert plan.cost_per_million_peak == pytest.approx(2 * 0.03 / (500 * 3600) * 1e6)
    assert plan.cost_per_million_average == pytest.approx(2 * 0.03 / (100 * 3600) * 1e6)
    assert plan.monthly_millions == pytest.approx(100 * 3600 * 730 / 1e6)


def test_plan_at_a_high_peak_adds_pods_and_caps_each_at_what_its_workers_can_use() -> None:
    plan = plan_capacity(1000.0, inputs(load__peak_rps=4000, load__average_rps=1800))
    assert plan.replicas == 8  # 4000 / (1000 x 1 core x 0.5)
    assert plan.cpu_request_m == 1000  # never more than one worker keeps busy
    assert (plan.hpa_min, plan.hpa_max) == (4, 16)


def test_cpu_requests_round_up_to_the_step() -> None:
    plan = plan_capacity(964.0, inputs(headroom__target_cpu_utilization=0.6))
    # 250 req/s / (964 x 0.6) = 0.432 core -> 450m, never rounded down below what the peak needs
    assert plan.cpu_request_m == 450
    assert plan.rps_per_pod * plan.replicas >= 500


def test_canary_weights_are_pod_shares_without_traffic_routing() -> None:
    assert canary_traffic_shares(2, [10, 25, 50]) == pytest.approx([1 / 3, 1 / 3, 1 / 2])
    assert canary_traffic_shares(10, [10, 25, 50]) == pytest.approx([1 / 10, 3 / 11, 1 / 2])
    assert canary_traffic_shares(1, [10]) == [0.5]


# ---- the committed plan, the prod overlay and the report ---------------------------------------------------


@pytest.fixture(scope="module")
def prod() -> list[dict[str, Any]]:
    system_tool("kubectl")
    return render("prod")


def test_the_committed_plan_reads_the_one_worker_serving_row() -> None:
    plan, row, rows = build_plan()
    assert row.workers == 1
    assert row in rows
    assert plan.rps_per_core == row.rps  # cores_per_worker is 1.0 in k8s/capacity.yaml


def test_prod_overlay_carries_the_plan(prod: list[dict[str, Any]]) -> None:
    plan, _, _ = build_plan()
    assert overlay_mismatches(plan, prod) == []


def test_an_overlay_edited_without_the_plan_is_caught(prod: list[dict[str, Any]]) -> None:
    plan, _, _ = build_plan()
    edited = copy.deepcopy(prod)
    hpa = find(edited, "HorizontalPodAutoscaler", "mlops-lab-api")
    assert hpa is not None
    hpa["spec"]["maxReplicas"] += 1
    assert overlay_mismatches(plan, edited) == [
        f"HPA maxReplicas: overlay has {plan.hpa_max + 1}, the plan says {plan.hpa_max}"
    ]
    # ... and so is a plan whose inputs moved while the overlay stayed put
    busier = plan_capacity(
        plan.rps_per_core, {**load_inputs(), "load": {"peak_rps": 2000, "average_rps": 600, "surge_factor": 2.0}}
    )
    assert overlay_mismatches(busier, prod)


def test_platform_requests_sum_the_fixed_pods_and_leave_the_api_out(prod: list[dict[str, Any]]) -> None:
    totals = platform_requests(prod)
    # postgres 250m + mlflow 250m + prefect server 250m + worker 500m + rollout controller 50m (256Mi)
    # + redis 100m (128Mi) + two stream-scorers 250m each (512Mi each); the API's template Deployment has 0 replicas
    assert totals == {"cpu": 1.9, "memory_gib": 4.125}


def test_docs_capacity_md_is_the_generators_output(prod: list[dict[str, Any]]) -> None:
    inputs_now = load_inputs()
    plan, row, rows = build_plan(inputs_now)
    expected = render_markdown(plan, row, rows, inputs_now, platform_requests(prod))
    assert Path(REPORT).read_text() == expected, "regenerate it: uv run mlops-lab capacity"


def test_the_prod_sizing_patch_is_the_generators_output() -> None:
    from ops.capacity_docs import PATCH, render_patch

    plan, _, _ = build_plan()
    assert PATCH.read_text() == render_patch(plan), "regenerate it: uv run mlops-lab capacity"
