"""Online accuracy per model version over time: the feedback labels, bucketed, with a count and an interval.

Concept: monitoring model quality with delayed ground truth (C38 feedback loop, C34 concept drift). Offline
accuracy is measured once on a held-out set; online accuracy is what users got, known only when their
labels come back. ``accuracy_over_time`` takes the labelled window (``serving.log_reader.labelled_window``:
one row per prediction with a label, with ``ts``, ``model_version`` and ``correct``), cuts the span of
prediction times into equal buckets and gives, per version and bucket, the labelled count, the correct
count, the accuracy and its 95 % Wilson interval (statsmodels ``proportion_confint``): a point from 8 labels
and one from 800 look alike without them. A bucket where a version served nothing is absent, not zero.
``write_accuracy_picture`` draws the table headless (matplotlib Agg, imported when drawing) and returns the
points it read back from the drawn lines, so a test compares them with the table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from matplotlib.text import Annotation

PICTURE_NAME = "online-accuracy.png"
COLUMNS = ["model_version", "start", "end", "labelled", "correct", "accuracy", "low", "high"]


def accuracy_over_time(labelled: pd.DataFrame, buckets: int = 8, confidence: float = 0.95) -> pd.DataFrame:
    """Per version and time bucket (equal widths over the window's prediction times): counts, accuracy, interval.

    Args:
        labelled: rows with ``ts`` (prediction time), ``model_version`` and ``correct`` (bool).
        buckets: how many equal spans the window is cut into (a window within one instant is one bucket).
        confidence: of the Wilson interval on each point.

    Returns:
        A frame with ``COLUMNS``, sorted by version then bucket start; empty when nothing is labelled.
    """
    from statsmodels.stats.proportion import proportion_confint

    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    if labelled.empty:
        return pd.DataFrame(columns=COLUMNS)
    ts = pd.to_datetime(labelled["ts"], utc=True)
    first, last = ts.min(), ts.max()
    width = (last - first) / buckets if last > first else pd.Timedelta(seconds=1)
    # The last prediction belongs to the last bucket, not to a bucket of its own past the end.
    index = np.minimum(((ts - first) / width).astype(int).to_numpy(), buckets - 1)
    frame = pd.DataFrame(
        {"model_version": labelled["model_version"].astype(str).to_numpy(), "bucket": index},
    ).assign(correct=labelled["correct"].astype(bool).to_numpy())
    grouped = frame.groupby(["model_version", "bucket"], sort=True)["correct"].agg(["size", "sum"]).reset_index()
    low, high = proportion_confint(grouped["sum"], grouped["size"], alpha=1 - confidence, method="wilson")
    accuracy = grouped["sum"] / grouped["size"]
    # Wilson's bound at 100 % comes back as 1 - 1e-16: keep the point inside its own interval.
    low, high = np.minimum(np.asarray(low, dtype=float), accuracy), np.maximum(np.asarray(high, dtype=float), accuracy)
    return pd.DataFrame(
        {
            "model_version": grouped["model_version"],
            "start": first + grouped["bucket"] * width,
            "end": first + (grouped["bucket"] + 1) * width,
            "labelled": grouped["size"].astype(int),
            "correct": grouped["sum"].astype(int),
            "accuracy": accuracy,
            "low": low,
            "high": high,
        }
    )[COLUMNS]


def write_accuracy_picture(table: pd.DataFrame, out: Path, title: str = "") -> dict[str, pd.DataFrame]:
    """Draw one line per version (point = bucket middle, bar = Wilson interval, number = labels) to ``out``.

    Returns, per version, the points read back from the drawn line and bars: ``middle``, ``accuracy``,
    ``low``, ``high``, ``labelled`` (from the annotations).

    Raises:
        ValueError: the table is empty (no labels in the window: nothing to draw).
    """
    if table.empty:
        raise ValueError("no labelled predictions in the window: send traffic with feedback (`mlops-lab traffic`)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.6))
    drawn = {}
    for k, (version, rows) in enumerate(table.groupby("model_version", sort=True)):
        middle = rows["start"] + (rows["end"] - rows["start"]) / 2
        x = mdates.date2num(middle.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy())
        acc = rows["accuracy"].to_numpy(dtype=float)
        bars = np.vstack([acc - rows["low"].to_numpy(dtype=float), rows["high"].to_numpy(dtype=float) - acc])
        container = ax.errorbar(x, acc, yerr=bars, marker="o", capsize=3, label=f"v{version}")
        labels = [
            # Versions that share a bucket draw their points close together: stagger their counts.
            ax.annotate(str(n), (xi, yi), xytext=(4, 4 - 12 * (k % 2)), textcoords="offset points", fontsize=7)
            for xi, yi, n in zip(x, acc, rows["labelled"], strict=True)
        ]
        drawn[str(version)] = (container, labels)
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("online accuracy (labelled predictions)")
    ax.set_xlabel("prediction time (UTC), bucket middles; numbers: labels per point; bars: 95 % Wilson")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.set_title(title or "Online accuracy per model version over time, from feedback labels")
    ax.legend(loc="lower left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plotted = {version: _read_back(container, labels) for version, (container, labels) in drawn.items()}
    plt.close(fig)
    return plotted


def _read_back(container: object, labels: Sequence[Annotation]) -> pd.DataFrame:
    """The points as drawn: the data line, the ends of the error bars and the count beside each point."""
    import matplotlib.dates as mdates
    from matplotlib.container import ErrorbarContainer

    assert isinstance(container, ErrorbarContainer)
    line, _caps, (bar_lines,) = container.lines
    assert line is not None
    segments = bar_lines.get_segments()
    return pd.DataFrame(
        {
            "middle": pd.to_datetime([mdates.num2date(x) for x in np.asarray(line.get_xdata(), dtype=float)], utc=True),
            "accuracy": np.asarray(line.get_ydata(), dtype=float),
            "low": [float(s[0][1]) for s in segments],
            "high": [float(s[1][1]) for s in segments],
            "labelled": [int(label.get_text()) for label in labels],
        }
    )
