"""Demo timings: every demo run once, in order, as a learner would, and the times written down.

Concept: a budget that is measured, not asserted. Each demo should finish in under 30 seconds,
``make demo``'s whole story (``demo loop``, C01's demo) included, because an interviewer will not
wait longer. A
timed assertion in a test would be flaky on a shared CI box, so this module runs every demo in
``DEMOS`` as its own ``mlops-lab demo NAME`` process (each on its own fresh ``<state>/demos/NAME``), records the wall
time a learner sees and the time the demo reports itself, and writes ``docs/demo-timings.md`` with
the machine it ran on. ``make bench`` runs it; ``docs/instructor-guide.md`` points to the page.
Rendering and parsing are pure and unit-tested; only the runner starts processes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import machine_info
from core.paths import REPO
from lab.demos import DEMOS

OUT = REPO / "docs" / "demo-timings.md"
BUDGET_S = 30.0
CAP_S = 600.0  # a demo that hangs is killed and recorded, instead of holding the machine
TIMED_OUT = -9
_FINISHED = re.compile(r"demo (\S+) finished in ([0-9.]+) s")


@dataclass(frozen=True)
class DemoTiming:
    """One demo's run: its own reported time, the process wall time, and how it ended."""

    name: str
    concepts: tuple[str, ...]
    in_demo_s: float | None
    wall_s: float
    exit_code: int

    @property
    def verdict(self) -> str:
        if self.exit_code == TIMED_OUT:
            return f"failed (killed after {CAP_S:.0f} s)"
        if self.exit_code != 0:
            return f"failed (exit {self.exit_code})"
        return "within budget" if self.wall_s <= BUDGET_S else f"over {BUDGET_S:.0f} s"


def reported_seconds(output: str) -> float | None:
    """The time a demo reports in its last line ("demo canary finished in 17.3 s"), if any."""
    found = _FINISHED.findall(output)
    return float(found[-1][1]) if found else None


def concepts_by_demo() -> dict[str, tuple[str, ...]]:
    """Demo name -> the catalog ids it shows."""
    from lab.catalog import load_catalog

    shown: dict[str, list[str]] = {}
    for c in load_catalog():
        shown.setdefault(c.demo_name, []).append(c.id)
    return {name: tuple(ids) for name, ids in shown.items()}


def run_all(names: Sequence[str], state: Path) -> list[DemoTiming]:
    """Run each demo as ``mlops-lab demo NAME`` on ``state``, one after the other."""
    cli = Path(sys.executable).with_name("mlops-lab")
    env = {**os.environ, "MLOPS_STATE_DIR": str(state), "COLUMNS": "200"}
    shown = concepts_by_demo()
    timings = []
    for name in names:
        start = time.perf_counter()
        try:
            done = subprocess.run(
                [str(cli), "demo", name], cwd=REPO, env=env, capture_output=True, text=True, timeout=CAP_S, check=False
            )
            output, code = done.stdout, done.returncode
        except subprocess.TimeoutExpired:  # killed at the cap: recorded as a failure, the run goes on
            output, code = "", TIMED_OUT
        wall = time.perf_counter() - start
        timings.append(DemoTiming(name, shown.get(name, ()), reported_seconds(output), wall, code))
        print(f"{name:<20} {wall:6.1f} s  {timings[-1].verdict}", flush=True)
    return timings


def render(timings: Sequence[DemoTiming], machine: dict[str, str], when: datetime) -> str:
    """``docs/demo-timings.md``."""
    over = [t.name for t in timings if t.verdict != "within budget"]
    lines = [
        "# Demo timings",
        "",
        f"Every demo, run once in this order by `mlops-lab demo-timings`, each on a fresh state of its own "
        f'(part of `make bench`), {when:%Y-%m-%d %H:%M} UTC. "In the demo" is the time the demo reports; '
        '"wall" adds the process start-up, which is what a learner waits. The budget is '
        f"{BUDGET_S:.0f} s of wall time per demo, `loop` (`make demo`) included. A demo "
        "that needs a model trains its own first, and that time is counted. "
        "The libraries' "
        "bytecode is compiled by `make setup` (`uv sync --compile-bytecode`); without it, each demo compiles "
        "MLflow, Prefect, GX and Evidently from source wherever PYTHONDONTWRITEBYTECODE is set (about 7 s).",
        "",
        "| machine | |",
        "| --- | --- |",
        *[f"| {key} | {value} |" for key, value in machine.items()],
        "",
        "| command | concepts | in the demo | wall | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in timings:
        inside = f"{t.in_demo_s:.1f} s" if t.in_demo_s is not None else "-"
        lines.append(
            f"| `mlops-lab demo {t.name}` | {', '.join(t.concepts)} | {inside} | {t.wall_s:.1f} s | {t.verdict} |"
        )
    lines += ["", f"Over budget or failed: {', '.join(over)}." if over else "Every demo ran within its budget."]
    return "\n".join(lines) + "\n"


def write_timings() -> tuple[Path, bool]:
    """Run every demo in order (each on its own fresh state), write docs/demo-timings.md; (path, all exited 0)."""
    with tempfile.TemporaryDirectory(prefix="demo-timings-") as tmp:
        timings = run_all(list(DEMOS), Path(tmp) / "state")
    OUT.write_text(render(timings, machine_info(), datetime.now(UTC)), encoding="utf-8")
    return OUT, not any(t.exit_code for t in timings)
