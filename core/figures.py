"""Pictures drawn headless by the code that computes their data, and read back from what was drawn.

Concept: a picture is a report too (issue 15). Each plot function takes the data object its report is
made from, writes a PNG next to that report and returns the series *as drawn* (read back from the
plot's lines and markers), so a test can compare the picture with its data without looking at pixels.
matplotlib is imported here, lazily, with the Agg backend: no display, and ``mlops-lab --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (creating its folder), without the version stamp, and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110, metadata={"Software": None})
    pyplot().close(fig)
    return path


def drawn(artist: Any) -> tuple[list[Any], list[float]]:
    """The x and y a line or scatter actually drew (NaN gaps kept), as plain lists."""
    if hasattr(artist, "get_offsets"):  # a scatter: an (n, 2) array of points
        offsets = artist.get_offsets()
        return [float(x) for x in offsets[:, 0]], [float(y) for y in offsets[:, 1]]
    return list(artist.get_xdata()), [float(y) for y in artist.get_ydata()]
