"""Monitoring findings over time as a picture: each check's score per run against its threshold.

Concept: monitoring as decisions, watched over time (C32-C37). One run's table says what fired now;
the history says whether a score has been creeping towards its threshold for a week, or jumped
once. Each check gets its own panel (scores are in different units: a share of drifted features,
an accuracy drop, a z-score), its score per run as a line, its threshold as a dashed step, fired
runs in red and inconclusive runs (no score) as grey crosses at zero. Drawn from the findings the
runs saved (`core.findings.finding_runs`), next to each monitoring report, and by the drift demo.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.figures import drawn, pyplot, save

if TYPE_CHECKING:
    import sqlalchemy as sa

    from core.findings import Finding

PICTURE = "findings-over-time.png"
RUNS_SHOWN = 30


def _value(x: float | None) -> float:
    return math.nan if x is None else float(x)


def plot_findings(
    runs: Sequence[tuple[str, Sequence[Finding]]], path: Path, title: str = "monitoring runs"
) -> dict[str, dict[str, list[Any]]]:
    """One panel per check over ``runs`` (label, findings), in order; writes the PNG at ``path``.

    Returns per check the series as drawn, one entry per run: ``score`` and ``threshold`` (NaN where the
    check did not run or had no score), ``fired`` and ``inconclusive`` (the run positions marked).
    """
    checks = list(dict.fromkeys(f.check for _, findings in runs for f in findings))
    if not checks:
        raise ValueError("no findings to draw: run `mlops-lab monitor` first")
    plt = pyplot()
    fig, axes = plt.subplots(len(checks), 1, figsize=(9, 1.9 * len(checks) + 0.6), sharex=True, squeeze=False)
    x = list(range(len(runs)))
    plotted: dict[str, dict[str, list[Any]]] = {}
    for ax, check in zip(axes[:, 0], checks, strict=True):
        found = [next((f for f in findings if f.check == check), None) for _, findings in runs]
        scores = [_value(f.score if f else None) for f in found]
        thresholds = [_value(f.threshold if f else None) for f in found]
        (score,) = ax.plot(x, scores, "-o", color="tab:blue", ms=4, label="score")
        (threshold,) = ax.plot(x, thresholds, color="black", ls="--", lw=1, drawstyle="steps-mid", label="threshold")
        fired_x = [i for i, f in enumerate(found) if f is not None and f.fired]
        (fired,) = ax.plot(fired_x, [scores[i] for i in fired_x], "o", color="tab:red", ms=7, label="fired")
        unsure_x = [i for i, f in enumerate(found) if f is not None and f.status == "inconclusive"]
        (unsure,) = ax.plot(unsure_x, [0.0] * len(unsure_x), "x", color="grey", ms=8, label="inconclusive")
        low, high = ax.get_ylim()
        ax.set_ylim(low, high + 0.35 * (high - low))  # room for the legend above the highest score
        ax.set_ylabel(check.replace("_", " "), fontsize=8)
        ax.legend(fontsize=7, loc="upper left", ncol=4)
        plotted[check] = {
            "score": drawn(score)[1],
            "threshold": drawn(threshold)[1],
            "fired": drawn(fired)[0],
            "inconclusive": drawn(unsure)[0],
        }
    bottom = axes[-1, 0]
    bottom.set_xticks(x, [label for label, _ in runs], fontsize=7, rotation=30 if len(runs) > 6 else 0)
    axes[0, 0].set_title(f"Findings over time: {title}")
    save(fig, path)
    return plotted


def run_label(ts: datetime) -> str:
    return ts.strftime("%m-%d %H:%M:%S")


def write_findings_picture(engine: sa.Engine, out_dir: Path, limit: int = RUNS_SHOWN) -> Path | None:
    """The last ``limit`` runs from the findings history, drawn into ``out_dir``; None before any run."""
    from core.findings import finding_runs

    runs = finding_runs(engine, limit)
    if not runs:
        return None
    path = out_dir / PICTURE
    plot_findings([(run_label(ts), findings) for ts, findings in runs], path, f"the last {len(runs)} runs")
    return path
