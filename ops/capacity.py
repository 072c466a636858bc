"""Capacity and cost plan for the prediction API, from measured throughput (C51).

Concept: cost and capacity planning. Replicas and CPU requests are not guessed: one worker's
measured requests/s (docs/benchmarks.md, section 4) gives requests/s per core; a planned peak and a
CPU headroom (the HPA target) turn that into pods, a CPU request per pod and HPA bounds; list prices
turn pods into a cost per million predictions. The inputs are in ``k8s/capacity.yaml`` (assumptions,
labelled as such); the prod overlay must carry the result (tests/unit/ops/test_capacity.py), so the
manifests cannot drift from the arithmetic that justifies them.

Pure functions do the work here; `ops.capacity_docs` writes what they decide (docs/capacity.md and
the prod overlay's sizing patch), run by ``mlops-lab capacity``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.paths import REPO
from ops.k8s_objects import containers, cpu_cores, find, memory_bytes, workloads

INPUTS = REPO / "k8s" / "capacity.yaml"
SECTION = "## 4. Serving over HTTP"
_ROW = re.compile(r"^- (?:(?P<workers>\d+) workers, )?c=(?P<c>\d+): (?P<rest>.*)$")
_UNITS_MS = {"µs": 1e-3, "ms": 1.0, "s": 1000.0}


class BenchmarkParseError(ValueError):
    """docs/benchmarks.md lacks the serving figures the plan needs; the message says which."""


@dataclass(frozen=True)
class ServingRow:
    """One measured serving configuration: workers, client concurrency, requests/s and p99."""

    workers: int
    concurrency: int
    rps: float
    p99_ms: float

    @property
    def label(self) -> str:
        return f"{self.workers} worker{'s' if self.workers > 1 else ''}, c={self.concurrency}"


def _ms(text: str) -> float:
    value, unit = text.split()
    return float(value) * _UNITS_MS[unit]


def parse_serving_rows(markdown: str, subject: str = "ours /v1/predict") -> list[ServingRow]:
    """The subject's requests/s and p99 per worker count and concurrency, from the serving section.

    Reads the summary lines such as ``- c=8: ours /v1/predict 964 req/s, p50 7.25 ms, p99 19.2 ms; ...``.
    """
    if SECTION not in markdown:
        raise BenchmarkParseError(f"no {SECTION!r} section: run `make bench` to regenerate docs/benchmarks.md")
    section = markdown.split(SECTION, 1)[1].split("\n## ", 1)[0]
    name = re.escape(subject).replace(r"\ ", r"(?: ×\d+)? ", 1)  # "ours ×2 /v1/predict" on 2-worker rows
    figures = re.compile(rf"{name} ([\d,.]+) req/s, p50 ([\d.]+ (?:µs|ms|s)), p99 ([\d.]+ (?:µs|ms|s))")
    rows = []
    for line in section.splitlines():
        row, found = _ROW.match(line), figures.search(line)
        if row and found:
            rps, _, p99 = found.groups()
            workers = int(row["workers"] or 1)
            rows.append(ServingRow(workers, int(row["c"]), float(rps.replace(",", "")), _ms(p99)))
    if not rows:
        raise BenchmarkParseError(f"no '{subject} N req/s' figures in {SECTION!r}")
    return rows


def pick_row(rows: list[ServingRow], max_p99_ms: float, workers: int = 1) -> ServingRow:
    """The ``workers``-worker row at the lowest client concurrency whose p99 stays within ``max_p99_ms``.

    At concurrency 1 every request is served alone and pays its full CPU cost. At higher concurrency
    a worker serves more per core, because micro-batching shares the model's per-call cost among the
    requests in flight together -- but a pod at the planned load has few requests in flight, so
    planning with that figure would give it too little CPU. Faster rows are headroom, not plan.
    """
    fitting = [r for r in rows if r.workers == workers and r.p99_ms <= max_p99_ms]
    if not fitting:
        raise BenchmarkParseError(f"no {workers}-worker serving row with p99 <= {max_p99_ms} ms")
    return min(fitting, key=lambda r: r.concurrency)


@dataclass(frozen=True)
class CapacityPlan:
    """Pods, requests, HPA bounds and cost for the planned load."""

    rps_per_core: float
    replicas: int  # pods at the planned peak (the Rollout's declared replicas)
    cpu_request_m: int
    memory_request_mib: int
    memory_limit_mib: int
    target_utilization: float
    rps_per_pod: float  # at the HPA target
    hpa_min: int
    hpa_max: int
    pod_cost_hour: float
    cost_per_million_peak: float
    cost_per_million_average: float
    monthly_millions: float
    monthly_api_cost: float


def plan_capacity(rps_per_worker: float, inputs: dict[str, Any]) -> CapacityPlan:
    """The smallest pods that carry the peak at the headroom target, at least ``min_replicas`` of them.

    1. requests/s per core = one worker's requests/s / cores per worker;
    2. pods at peak = max(min_replicas, ceil(peak / (per core x largest pod x target))), where the largest
       pod is what its workers can keep busy (workers x cores per worker);
    3. CPU request = peak / pods / (per core x target), rounded up to the step;
    4. HPA min = max(min_replicas, ceil(average / per pod)); HPA max = ceil(peak x surge / per pod).
    """
    load, pod, price = inputs["load"], inputs["pod"], inputs["prices"]
    target = float(inputs["headroom"]["target_cpu_utilization"])
    floor = int(inputs["availability"]["min_replicas"])
    per_core = rps_per_worker / float(inputs["benchmark"]["cores_per_worker"])
    largest_pod = pod["workers"] * float(inputs["benchmark"]["cores_per_worker"])
    replicas = max(floor, math.ceil(load["peak_rps"] / (per_core * largest_pod * target)))
    step = int(pod["cpu_step_millicores"])
    cpu_m = step * math.ceil(1000 * load["peak_rps"] / replicas / (per_core * target) / step)
    per_pod = per_core * cpu_m / 1000 * target
    hpa_min = max(floor, math.ceil(load["average_rps"] / per_pod))
    hpa_max = max(hpa_min, math.ceil(load["peak_rps"] * load["surge_factor"] / per_pod))
    pod_hour = cpu_m / 1000 * price["vcpu_hour"] + pod["memory_request_mib"] / 1024 * price["gib_hour"]
    average_pods = max(hpa_min, math.ceil(load["average_rps"] / per_pod))
    return CapacityPlan(
        rps_per_core=per_core,
        replicas=replicas,
        cpu_request_m=cpu_m,
        memory_request_mib=int(pod["memory_request_mib"]),
        memory_limit_mib=int(pod["memory_limit_mib"]),
        target_utilization=target,
        rps_per_pod=per_pod,
        hpa_min=hpa_min,
        hpa_max=hpa_max,
        pod_cost_hour=pod_hour,
        cost_per_million_peak=replicas * pod_hour / (load["peak_rps"] * 3600) * 1e6,
        cost_per_million_average=average_pods * pod_hour / (load["average_rps"] * 3600) * 1e6,
        monthly_millions=load["average_rps"] * 3600 * price["hours_per_month"] / 1e6,
        monthly_api_cost=average_pods * pod_hour * price["hours_per_month"],
    )


@dataclass(frozen=True)
class CapacityCurve:
    """The plan at a range of peaks (same inputs otherwise), and the planned peak's plan among them."""

    peaks: list[float]
    plans: list[CapacityPlan]
    planned_peak: float
    planned: CapacityPlan
    hours_per_month: float


def capacity_curve(rps_per_worker: float, inputs: dict[str, Any], points: int = 60) -> CapacityCurve:
    """`plan_capacity` at ``points`` peaks (and at the planned one), up to three times the planned peak or
    three times what the availability floor's pods can carry at full size, whichever is larger."""
    planned_peak = float(inputs["load"]["peak_rps"])
    floor_reach = (  # req/s the floor's pods carry at their largest size (a worker per core)
        int(inputs["availability"]["min_replicas"])
        * rps_per_worker
        * inputs["pod"]["workers"]
        * float(inputs["headroom"]["target_cpu_utilization"])
    )
    top = max(3.0 * planned_peak, 3.0 * floor_reach)
    step = (top - 0.1 * planned_peak) / (points - 1)
    peaks = sorted({round(0.1 * planned_peak + i * step, 6) for i in range(points)} | {planned_peak})

    def at(peak: float) -> CapacityPlan:
        return plan_capacity(rps_per_worker, inputs | {"load": inputs["load"] | {"peak_rps": peak}})

    plans = [at(peak) for peak in peaks]
    planned = plan_capacity(rps_per_worker, inputs)
    return CapacityCurve(peaks, plans, planned_peak, planned, float(inputs["prices"]["hours_per_month"]))


def canary_traffic_shares(replicas: int, weights: list[int]) -> list[float]:
    """The canary's real share of pods at each ``setWeight`` of a replica-weighted Argo canary.

    Without traffic routing Argo Rollouts scales the canary to ceil(replicas x w) pods and the stable
    to ceil(replicas x (1 - w)); a Service spreads requests over pods, so that ratio is the traffic share.
    """
    shares = []
    for w in weights:
        canary, stable = math.ceil(replicas * w / 100), math.ceil(replicas * (100 - w) / 100)
        shares.append(canary / (canary + stable))
    return shares


def overlay_mismatches(plan: CapacityPlan, objects: list[dict[str, Any]], name: str = "mlops-lab-api") -> list[str]:
    """Where a rendered overlay disagrees with the plan (empty: it carries the plan exactly)."""
    rollout, hpa, pods = (
        find(objects, "Rollout", name),
        find(objects, "HorizontalPodAutoscaler", name),
        find(objects, "Deployment", name),
    )
    if rollout is None or hpa is None or pods is None:
        return [f"the overlay lacks Rollout, HorizontalPodAutoscaler or Deployment {name}"]
    container = next(c for c in pods["spec"]["template"]["spec"]["containers"] if c["name"] == "api")
    res = container.get("resources", {})
    target = next(
        m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"
    )
    found = {
        "Rollout replicas": (rollout["spec"].get("replicas"), plan.replicas),
        "HPA minReplicas": (hpa["spec"].get("minReplicas"), plan.hpa_min),
        "HPA maxReplicas": (hpa["spec"]["maxReplicas"], plan.hpa_max),
        "HPA target utilization (%)": (target, round(plan.target_utilization * 100)),
        "CPU request (m)": (round(cpu_cores(res.get("requests", {}).get("cpu", 0)) * 1000), plan.cpu_request_m),
        "memory request (MiB)": (
            memory_bytes(res.get("requests", {}).get("memory", 0)) // 2**20,
            plan.memory_request_mib,
        ),
        "memory limit (MiB)": (memory_bytes(res.get("limits", {}).get("memory", 0)) // 2**20, plan.memory_limit_mib),
    }
    return [f"{what}: overlay has {have}, the plan says {want}" for what, (have, want) in found.items() if have != want]


def platform_requests(objects: list[dict[str, Any]]) -> dict[str, float]:
    """CPU cores and GiB requested by the long-running pods other than the API (the fixed platform)."""
    cpu = memory = 0.0
    for w in workloads(objects):
        if w.kind in ("Deployment", "StatefulSet") and w.replicas:
            for c in containers(w):
                req = c.get("resources", {}).get("requests", {})
                cpu += w.replicas * cpu_cores(req.get("cpu", 0))
                memory += w.replicas * memory_bytes(req.get("memory", 0)) / 2**30
    return {"cpu": round(cpu, 3), "memory_gib": round(memory, 3)}


def load_inputs(path: Path = INPUTS) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load(path.read_text()))


def build_plan(inputs: dict[str, Any] | None = None) -> tuple[CapacityPlan, ServingRow, list[ServingRow]]:
    """The plan from the committed inputs: benchmark rows, the chosen row and the params guard rail."""
    from core.params import load_params

    inputs = inputs or load_inputs()
    rows = parse_serving_rows((REPO / inputs["benchmark"]["file"]).read_text(), inputs["benchmark"]["subject"])
    row = pick_row(rows, load_params(REPO / "params.yaml").rollout.max_p99_latency_ms)
    return plan_capacity(row.rps, inputs), row, rows
