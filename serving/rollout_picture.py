"""A picture of one canary rollout: the weight step by step, and every analysis verdict on it.

Concept: progressive delivery with automatic rollback (C21, C26). The rollout's history (``RolloutState.history``,
kept in the shared state store) already records each decision with its time, the weight after it and the
reason; this module turns it into a step function of the challenger's weight over time with one marker per
analysis, coloured by what the controller did: **pass** (next step), **hold** (inconclusive or paused: wait),
**promote** (all steps passed) or **rollback** (a breach or an operator's abort, weight back to 0). The
marker sits at the weight the analysis judged (before its action); consecutive waits are one history entry,
so one hold marker stands for ``repeats`` looks. ``weight_series`` is pure (tests compare it with the
history); ``write_rollout_picture`` draws it headless (matplotlib's Agg backend, imported when drawing) and
returns the series it read back from the drawn lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pathlib import Path

    from serving.rollout import RolloutState

Mark = Literal["pass", "hold", "promote", "rollback"]
# A canary that asks for approval (production mode, C60) holds its weight until a person answers: a hold.
MARKS: dict[str, Mark] = {
    "step": "pass",
    "wait": "hold",
    "request_approval": "hold",
    "promote": "promote",
    "abort": "rollback",
}
COLOURS: dict[Mark, str] = {"pass": "tab:green", "hold": "tab:orange", "promote": "tab:blue", "rollback": "tab:red"}
PICTURE_NAME = "rollout-weights.png"


@dataclass(frozen=True)
class VerdictMark:
    """One analysis (or an operator's abort): when, at which weight it judged, what it decided and why."""

    at: datetime
    weight: float
    mark: Mark
    reason: str
    repeats: int = 1


@dataclass(frozen=True)
class WeightSeries:
    """The challenger's weight as a step function (value from ``times[i]`` until the next time) and the marks."""

    times: tuple[datetime, ...]
    weights: tuple[float, ...]
    marks: tuple[VerdictMark, ...]


def weight_series(state: RolloutState) -> WeightSeries:
    """The weight after every history entry, and a mark per analysis at the weight it judged.

    A rollout that has not finished keeps its last weight up to its last entry; nothing is extrapolated.
    """
    times: list[datetime] = []
    weights: list[float] = []
    marks: list[VerdictMark] = []
    before = 0.0
    for event in state.history:
        if event.event in MARKS:
            marks.append(VerdictMark(event.at, before, MARKS[event.event], event.reason, event.repeats))
        times.append(event.at)
        weights.append(event.weight)
        before = event.weight
    return WeightSeries(tuple(times), tuple(weights), tuple(marks))


def _looks(n: int) -> str:
    return f"{n} look" if n == 1 else f"{n} looks"


def _short(reason: str, width: int = 90) -> str:
    return reason if len(reason) <= width else reason[: width - 1] + "…"


def write_rollout_picture(state: RolloutState, out: Path) -> WeightSeries:
    """Draw ``state``'s weight steps with its verdicts to the PNG ``out``; returns the series read back from the plot.

    Raises:
        ValueError: the rollout has no history yet (nothing to draw).
    """
    if not state.history:
        raise ValueError("the rollout has no history yet: start one (`mlops-lab rollout start`) before drawing it")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    series = weight_series(state)
    fig, ax = plt.subplots(figsize=(9, 4.6))
    x = mdates.date2num(list(series.times))
    (line,) = ax.step(x, [100 * w for w in series.weights], where="post", color="black", label="weight")
    for mark in ("pass", "hold", "promote", "rollback"):
        chosen = [m for m in series.marks if m.mark == mark]
        if chosen:
            ax.scatter(
                mdates.date2num([m.at for m in chosen]),
                [100 * m.weight for m in chosen],
                s=70,
                color=COLOURS[mark],
                zorder=3,
                label=f"{mark} ({_looks(sum(m.repeats for m in chosen))})",
                gid=f"mark-{mark}",
            )
    for m in series.marks:  # the reason of each decisive verdict, where a reader looks for it
        if m.mark in ("promote", "rollback"):
            ax.annotate(
                _short(m.reason, 70),
                (mdates.date2num(m.at), 100 * m.weight),
                xytext=(-8, 12),
                textcoords="offset points",
                ha="right",
                fontsize=7,
                color=COLOURS[m.mark],
            )
    ax.set_ylim(-5, 110)
    ax.set_ylabel("challenger weight (%)")
    ax.set_xlabel("time (UTC)")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.set_title(f"Canary of v{state.challenger_version}: {state.status}, weight steps and analysis verdicts")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plotted = _read_back(line, ax, series)
    plt.close(fig)
    return plotted


def _read_back(line: object, ax: object, series: WeightSeries) -> WeightSeries:
    """The series as drawn: the step line's points and each marker group's points (what the PNG shows)."""
    import matplotlib.dates as mdates
    import numpy as np
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D

    assert isinstance(line, Line2D)
    times = tuple(mdates.num2date(x) for x in np.asarray(line.get_xdata(), dtype=float))
    weights = tuple(float(y) / 100 for y in np.asarray(line.get_ydata(), dtype=float))
    by_mark: dict[str, list[tuple[float, float]]] = {}
    for artist in ax.collections:  # type: ignore[attr-defined]
        if isinstance(artist, PathCollection) and str(artist.get_gid()).startswith("mark-"):
            offsets = np.asarray(artist.get_offsets(), dtype=float)
            by_mark[str(artist.get_gid())[5:]] = [(float(x), float(y)) for x, y in offsets]
    marks = []
    for mark, points in by_mark.items():
        originals = [m for m in series.marks if m.mark == mark]
        for (x, y), m in zip(points, originals, strict=True):
            marks.append(VerdictMark(mdates.num2date(x), y / 100, m.mark, m.reason, m.repeats))
    return WeightSeries(times, weights, tuple(sorted(marks, key=lambda m: m.at)))
