"""A picture of one A/B decision: the difference B - A with its interval, and how far the planned sample is.

Concept: A/B testing (C24). ``ab_stats.decide`` gives a verdict, a reason and, at the horizon, the test
(``Comparison``: B - A, its Newcombe interval, p). Read as a picture: the interval against the zero line
(no difference) and the minimum effect worth detecting either side of it (``monitoring.ab_test.min_effect``,
the effect the horizon was planned for), and beside it the labels each arm has against the planned
horizon (``ab_stats.horizon``; 435 per arm with the default params). Before the horizon there is no
interval to draw: the left panel says so rather than showing a difference nobody may act on.
``write_ab_picture`` draws headless (matplotlib Agg, imported when drawing) and returns the numbers it
read back from the drawn artists, so a test compares them with the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from matplotlib.lines import Line2D

    from core.params import ABTestParams
    from monitoring.ab_stats import ArmOutcome, Decision

PICTURE_NAME = "ab-interval.png"


@dataclass(frozen=True)
class ABPicture:
    """What the picture shows: the interval (None before the horizon), the lines, the labels per arm and the plan."""

    difference: float | None
    interval: tuple[float, float] | None
    reference_lines: tuple[float, ...]  # zero and -/+ the minimum effect
    labels: tuple[int, int]  # A, B
    planned: int


def ab_series(decision: Decision, a: ArmOutcome, b: ArmOutcome, params: ABTestParams, planned: int) -> ABPicture:
    """The numbers to draw, straight from the decision and the arms."""
    test = decision.comparison
    return ABPicture(
        difference=None if test is None else test.difference,
        interval=None if test is None else (test.ci_low, test.ci_high),
        reference_lines=(-params.min_effect, 0.0, params.min_effect),
        labels=(a.labelled, b.labelled),
        planned=planned,
    )


def write_ab_picture(
    decision: Decision, a: ArmOutcome, b: ArmOutcome, params: ABTestParams, planned: int, out: Path
) -> ABPicture:
    """Draw the decision to the PNG ``out``; returns what was drawn, read back from the plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = ab_series(decision, a, b, params, planned)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    for x, style in zip(series.reference_lines, (":", "-", ":"), strict=True):
        left.axvline(100 * x, color="grey", linestyle=style, linewidth=1, gid="reference")
    if series.interval is not None and series.difference is not None:
        low, high = series.interval
        left.errorbar(
            [100 * series.difference],
            [0],
            xerr=[[100 * (series.difference - low)], [100 * (high - series.difference)]],
            fmt="o",
            capsize=6,
            color="tab:blue",
            gid="interval",
        )
        confidence = decision.comparison.confidence if decision.comparison else 0.95
        left.set_title(f"B - A with its {confidence:.0%} Newcombe interval: {decision.verdict}", fontsize=10)
    else:
        left.text(
            0,
            0,
            "no interval before the horizon:\none test, at the planned sample",
            ha="center",
            va="center",
            bbox={"facecolor": "white", "edgecolor": "grey"},
        )
        left.set_title(f"{decision.verdict}: no test yet", fontsize=10)
    span = 100 * max([2 * params.min_effect, *(abs(v) for v in series.interval or ())])
    left.set_xlim(-1.15 * span, 1.15 * span)
    left.set_ylim(-1, 1)
    left.set_yticks([])
    left.set_xlabel(f"accuracy difference B - A (points); dotted: -/+ {100 * params.min_effect:g} planned effect")
    right.barh(["A champion", "B challenger"], list(series.labels), color=["tab:grey", "tab:blue"], gid="labels")
    right.axvline(planned, color="black", linestyle="--", gid="planned")
    right.set_xlim(0, 1.1 * max(planned, *series.labels))
    right.set_xlabel(f"labels per arm (planned horizon {planned}, dashed)")
    right.set_title("progress to the planned sample", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    drawn = _read_back(left, right)
    plt.close(fig)
    return drawn


def _read_back(left: object, right: object) -> ABPicture:
    """The numbers as drawn: the point and bar ends of the interval, the vertical lines and the bar lengths."""
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.container import BarContainer, ErrorbarContainer

    assert isinstance(left, Axes)
    assert isinstance(right, Axes)

    def x_of(lines: list[Line2D], gid: str) -> list[float]:
        return [float(np.asarray(line.get_xdata(), dtype=float)[0]) for line in lines if line.get_gid() == gid]

    difference = interval = None
    for container in left.containers:
        if isinstance(container, ErrorbarContainer):
            point, _caps, (whiskers,) = container.lines
            assert point is not None
            difference = float(np.asarray(point.get_xdata(), dtype=float)[0]) / 100
            ends = np.asarray(whiskers.get_segments()[0], dtype=float)[:, 0] / 100
            interval = (float(ends[0]), float(ends[1]))
    (bars,) = [c for c in right.containers if isinstance(c, BarContainer)]
    a, b = (round(patch.get_width()) for patch in bars.patches)
    (planned,) = x_of(list(right.lines), "planned")
    reference = tuple(x / 100 for x in x_of(list(left.lines), "reference"))
    return ABPicture(difference, interval, reference, (a, b), round(planned))
