"""The operational pictures in the docs, taken from the report folders of the demos that drew them.

Concept: pictures drawn by the code that computes the data, never by hand. The ``canary`` demo draws each
rollout's weight steps with the analysis verdicts (``serving/rollout_picture.py``) and the online accuracy
per model version over the whole demo (``monitoring/online_accuracy.py``); the ``ab-test`` demo draws its
decision (``monitoring/ab_picture.py``). ``mlops-lab demo-pictures`` runs both, each on its own fresh
``<state>/demos/NAME`` as ``mlops-lab demo NAME`` does, and copies their pictures to ``docs/operations/``,
which ``docs/operations-pictures.md`` embeds. The pictures come from live traffic with random labels, so
two runs draw the same shapes with different numbers.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from core.paths import REPO

if TYPE_CHECKING:
    from core.settings import Settings

OUT_DIR = REPO / "docs" / "operations"
# demo -> {picture in the demo's reports folder: name in docs/operations}
PICTURES: dict[str, dict[str, str]] = {
    "canary": {
        "canary/episode-1-promote.png": "canary-weights-promote.png",
        "canary/episode-2-abort.png": "canary-weights-abort.png",
        "canary/online-accuracy.png": "online-accuracy.png",
    },
    "ab-test": {"ab-test/ab-interval.png": "ab-interval.png"},
}


def copy_pictures(reports: Path, wanted: dict[str, str], out_dir: Path) -> list[Path]:
    """Copy a demo's pictures from its ``reports`` folder to ``out_dir``; raises naming any that is missing."""
    missing = [name for name in wanted if not (reports / name).is_file()]
    if missing:
        raise FileNotFoundError(f"the demo did not draw {missing} under {reports}: run it to see why it stopped")
    out_dir.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copyfile(reports / name, out_dir / target)) for name, target in wanted.items()]


def write_pictures(settings: Settings | None = None, out_dir: Path = OUT_DIR) -> tuple[list[Path], dict[str, float]]:
    """Run the demos that draw the pictures (narration discarded), copy their pictures to ``out_dir``.

    Returns the pictures written and each demo's own time in seconds.
    """
    from rich.console import Console

    from core.settings import Settings
    from lab.demos import run_demo

    s = settings or Settings()
    written: list[Path] = []
    seconds: dict[str, float] = {}
    for demo, wanted in PICTURES.items():
        seconds[demo] = run_demo(demo, console=Console(file=io.StringIO(), width=120), settings=s)
        written += copy_pictures(s.state / "demos" / demo / "reports", wanted, out_dir)
    return written, seconds
