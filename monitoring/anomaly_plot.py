"""The anomaly band as a picture: each live metric, its EWMA baseline, the band it must stay in, the flags.

Concept: anomaly detection on live metrics (C36). A table of flagged minutes says *when*; the picture
says *why*: the point left a band that the detector learned from the metric's own noise, and after a
lasting step the band follows the new level. Drawn from the frames `monitoring.anomaly.detect` returns
(``value``, ``baseline``, ``lower``, ``upper``, ``anomaly``), so what is drawn is what was judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.figures import drawn, pyplot, save

if TYPE_CHECKING:
    import pandas as pd

PICTURE = "anomaly-band.png"


def plot_anomaly_band(
    scored: Mapping[str, pd.DataFrame], path: Path, warmup: int, title: str = "live metrics"
) -> dict[str, dict[str, list[Any]]]:
    """One panel per metric: the values, the EWMA baseline, the band (shaded) and the flagged points.

    Returns, per metric, the series as drawn: ``value``, ``baseline``, ``lower``, ``upper`` (y values,
    NaN where the detector had no band yet) and ``flagged`` (the x of the red markers).
    """
    plt = pyplot()
    fig, axes = plt.subplots(len(scored), 1, figsize=(9, 2.3 * len(scored)), sharex=True, squeeze=False)
    plotted: dict[str, dict[str, list[Any]]] = {}
    for ax, (metric, points) in zip(axes[:, 0], scored.items(), strict=True):
        x = list(points.index)
        (value,) = ax.plot(x, points["value"], color="tab:blue", lw=1, label=metric)
        (baseline,) = ax.plot(x, points["baseline"], color="black", lw=1, ls="--", label="EWMA baseline")
        (lower,) = ax.plot(x, points["lower"], color="tab:green", lw=0.6)
        (upper,) = ax.plot(x, points["upper"], color="tab:green", lw=0.6)
        ax.fill_between(x, points["lower"], points["upper"], color="tab:green", alpha=0.15, label="band")
        hits = points[points["anomaly"]]
        (flags,) = ax.plot(list(hits.index), hits["value"], "o", color="tab:red", ms=6, label="flagged")
        if 0 < warmup < len(x):
            ax.axvline(x[warmup], color="grey", lw=0.8, ls=":", label=f"end of warmup ({warmup} points)")
        low, high = ax.get_ylim()
        ax.set_ylim(low, high + 0.3 * (high - low))  # room for the legend above the highest point
        ax.set_ylabel(metric, fontsize=8)
        ax.legend(fontsize=7, loc="upper left", ncol=5)
        plotted[metric] = {
            "value": drawn(value)[1],
            "baseline": drawn(baseline)[1],
            "lower": drawn(lower)[1],
            "upper": drawn(upper)[1],
            "flagged": drawn(flags)[0],
        }
    axes[0, 0].set_title(f"Anomaly band: {title}; a point outside the band (on its bad side) is flagged")
    save(fig, path)
    return plotted
