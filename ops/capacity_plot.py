"""Replicas and cost against the load as a picture, with the chosen plan marked (C51).

Concept: cost and capacity planning. The plan's table gives one answer for one assumed peak; the
curve shows how the answer moves if the assumption is wrong: at the low end the availability floor
fixes the pod count and only each pod's CPU request (and the cost) grows; once those pods are
full-size, pods are added in whole steps. Drawn from `ops.capacity.capacity_curve` by ``mlops-lab capacity``, next
to docs/capacity.md, which embeds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.figures import drawn, pyplot, save
from ops.capacity import CapacityCurve


def plot_capacity(curve: CapacityCurve, path: Path) -> dict[str, list[Any]]:
    """Pods at the peak (left axis) and their cost per month (right axis) against the peak's requests/s.

    Returns the series as drawn: ``peak_rps``, ``replicas``, ``monthly_cost`` and ``planned`` (the marked
    point: peak, pods, cost).
    """
    plt = pyplot()
    fig, pods_ax = plt.subplots(figsize=(8, 4))
    cost_ax = pods_ax.twinx()
    (pods,) = pods_ax.plot(
        curve.peaks, [p.replicas for p in curve.plans], drawstyle="steps-post", color="tab:blue", label="pods at peak"
    )
    monthly = [p.replicas * p.pod_cost_hour * curve.hours_per_month for p in curve.plans]
    (cost,) = cost_ax.plot(curve.peaks, monthly, color="tab:orange", lw=1.2, label="their cost per month (USD)")
    plan = curve.planned
    plan_cost = plan.replicas * plan.pod_cost_hour * curve.hours_per_month
    (marked,) = pods_ax.plot([curve.planned_peak], [plan.replicas], "o", color="tab:red", ms=9, label="the plan")
    pods_ax.annotate(
        f"plan: {plan.replicas} pods x {plan.cpu_request_m}m\n${plan_cost:,.0f}/month at peak",
        (curve.planned_peak, plan.replicas),
        textcoords="offset points",
        xytext=(12, -34),
        fontsize=8,
    )
    pods_ax.set(
        xlabel="planned peak (requests/s)", ylabel="pods (Rollout replicas)", ylim=(0, max(pods.get_ydata()) + 1)
    )
    pods_ax.yaxis.get_major_locator().set_params(integer=True)
    cost_ax.set(ylabel="USD per month if the peak lasted all month", ylim=(0, None))
    pods_ax.set_title("Replicas and cost vs peak load (the rest of k8s/capacity.yaml fixed)")
    pods_ax.legend(handles=[pods, cost, marked], fontsize=8, loc="upper left")
    save(fig, path)
    return {
        "peak_rps": drawn(pods)[0],
        "replicas": drawn(pods)[1],
        "monthly_cost": drawn(cost)[1],
        "planned": [drawn(marked)[0][0], drawn(marked)[1][0], plan_cost],
    }
