"""Benchmarks: performance targets measured against a baseline, never asserted in tests.

Concept: performance as evidence (DESIGN.md, "Performance targets"). A wall-clock assertion in a
test is flaky on a shared 2-core CI box and says nothing about *why* something is slow. Instead,
``make bench`` times each subject next to a baseline in the same run, interleaving their repeats
so that a burst of machine load hits both alike. It reports medians and the subject/baseline
ratio, and writes ``docs/benchmarks.md`` with the machine, the versions and the command, and the
pictures a section draws of its data next to it. A ratio ("tracking makes a training run N times
slower than a bare fit") survives a noisy machine; an absolute time does not.

Each section is a function ``(BenchEnv) -> Section`` listed in ``SECTIONS``; the core ones live in
``bench/sections.py``, and serving and monitoring add theirs the same way
(``"name": "package.module:function"``, imported only when run). This module holds the timing
helpers and the Markdown rendering, pure and unit-tested; the measurements import the heavy
libraries inside, so importing this module (and ``mlops-lab --help``) stays cheap.
"""

from __future__ import annotations

import importlib
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.lineage import library_versions as installed

if TYPE_CHECKING:
    from core.params import Params
    from core.settings import Settings

LIBRARIES = ("scikit-learn", "mlflow", "prefect", "great-expectations", "evidently", "pandas", "numpy")
COMMAND = "make bench"
# Sections in report order: name -> "module:function" taking a BenchEnv and returning a Section.
SECTIONS = {
    "cli": "bench.sections:measure_cli",
    "validation": "bench.sections:measure_validation",
    "training": "bench.sections:measure_training",
    "serving": "bench.serving_bench:measure_serving",
    "drift": "bench.drift_bench:measure_drift",
    "cold-start": "bench.cold_start_bench:measure_cold_start",
    "batch-scoring": "bench.batch_bench:measure_batch_scoring",
    "demo": "bench.demo_bench:measure_demo",
}
COLUMNS = ("measurement", "baseline", "baseline median", "subject", "subject median", "ratio", "target", "verdict")


def format_duration(seconds: float) -> str:
    """A duration with three significant figures, in s, ms or µs."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


@dataclass(frozen=True)
class Timing:
    """Repeated wall-clock samples of one thing, in seconds."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def per(self, units: int) -> Timing:
        """The same samples divided by a count, e.g. seconds per row."""
        return Timing(tuple(s / units for s in self.samples))

    def cell(self) -> str:
        """Median, then the range and the number of repeats."""
        if len(self.samples) == 1:
            return f"{format_duration(self.median)} (n=1)"
        low, high = format_duration(min(self.samples)), format_duration(max(self.samples))
        return f"{format_duration(self.median)} ({low}–{high}, n={len(self.samples)})"


@dataclass(frozen=True)
class Row:
    """One subject measured against one baseline; ``passed`` is None when there is no target."""

    what: str
    baseline: str
    subject: str
    baseline_time: Timing | None = None
    subject_time: Timing | None = None
    target: str = "—"
    passed: bool | None = None

    @property
    def ratio(self) -> float | None:
        """Subject median over baseline median (None without both timings)."""
        if self.baseline_time is None or self.subject_time is None or self.baseline_time.median <= 0:
            return None
        return self.subject_time.median / self.baseline_time.median

    def cells(self) -> list[str]:
        """The table cells, in COLUMNS order."""
        ratio = self.ratio
        shown = "—" if ratio is None else f"{ratio:.2f}×" if ratio >= 0.1 else f"{ratio:.2g}×"
        verdict = {None: "info", True: "pass", False: "**FAIL**"}[self.passed]
        return [
            self.what,
            self.baseline,
            self.baseline_time.cell() if self.baseline_time else "—",
            self.subject,
            self.subject_time.cell() if self.subject_time else "—",
            shown,
            self.target,
            verdict,
        ]


@dataclass(frozen=True)
class Figure:
    """A picture of a section's data: ``draw(path)`` writes the PNG; the report embeds ``file`` by name."""

    file: str
    caption: str
    draw: Callable[[Path], object]


@dataclass(frozen=True)
class Section:
    """One table of the report, with a sentence before it, notes and pictures after it."""

    title: str
    intro: str
    rows: list[Row]
    notes: list[str]
    figures: tuple[Figure, ...] = ()


@dataclass(frozen=True)
class Report:
    """Everything docs/benchmarks.md shows."""

    sections: list[Section]
    machine: dict[str, str]
    versions: dict[str, str]
    generated: str
    duration_s: float
    command: str = COMMAND


@dataclass(frozen=True)
class BenchEnv:
    """What a section needs: the project settings, its params and a progress printer."""

    settings: Settings
    params: Params
    say: Callable[[str], None] = print


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 0) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Timing(tuple(samples))


def time_interleaved(fns: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, Timing]:
    """Time several callables in turn (a, b, a, b, ...), so machine noise hits them alike."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].extend(time_calls(fn, 1).samples)
    return {name: Timing(tuple(values)) for name, values in samples.items()}


def _proc_field(path: str, key: str) -> str | None:
    """The value of the first ``key: value`` line of a /proc file (None off Linux)."""
    file = Path(path)
    if not file.exists():
        return None
    for line in file.read_text(errors="replace").splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return value.strip()
    return None


def load_average() -> str:
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def machine_info() -> dict[str, str]:
    """Platform, CPU model, cores, memory and the current load: what the figures depend on."""
    memory = _proc_field("/proc/meminfo", "MemTotal")  # "24576000 kB"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "platform": platform.platform(),
        "CPU": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": f"{os.cpu_count()} logical, {usable} usable by this process",
        "memory": f"{int(memory.split()[0]) / 1024**2:.1f} GiB" if memory else "unknown",
        "load average (1 min) at start": load_average(),
    }


def library_versions() -> dict[str, str]:
    """Python and the versions of the libraries whose speed the figures depend on."""
    return installed(LIBRARIES)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(r) for r in rows)]


def render_markdown(report: Report) -> str:
    """The whole report as Markdown: context first, then one table per section."""
    lines = [
        "# Benchmarks",
        "",
        f"Generated {report.generated} by `{report.command}` (runs `uv run --frozen mlops-lab bench`; "
        f"took {report.duration_s:.0f} s). Regenerate it with the same command; do not edit it by hand.",
        "",
        "> Figures come from a shared, noisy machine: other jobs were running (see the load average). "
        "Each subject is timed side by side with its baseline in the same run, with repeats interleaved, "
        "and the tables show medians. Read the **ratios**, and treat absolute times as upper bounds. "
        "A verdict compares a figure with its target; nothing here is asserted by the test suite.",
        "",
        "## Machine",
        "",
        *_table(["", ""], [[k, v] for k, v in report.machine.items()]),
        "",
        "## Versions",
        "",
        *_table(["package", "version"], [[k, v] for k, v in report.versions.items()]),
    ]
    for number, section in enumerate(report.sections, start=1):
        lines += ["", f"## {number}. {section.title}", "", section.intro, ""]
        lines += _table(list(COLUMNS), [row.cells() for row in section.rows])
        if section.notes:
            lines += ["", *(f"- {note}" for note in section.notes)]
        for figure in section.figures:
            lines += ["", f"![{figure.caption}]({figure.file})"]
    return "\n".join(lines) + "\n"


def _section(name: str) -> Callable[[BenchEnv], Section]:
    module, _, function = SECTIONS[name].partition(":")
    found: Callable[[BenchEnv], Section] = getattr(importlib.import_module(module), function)
    return found


def run_bench(env: BenchEnv, names: list[str] | None = None) -> Report:
    """Run the named sections (default: all, in order) and collect them into one report."""
    chosen = names or list(SECTIONS)
    unknown = [n for n in chosen if n not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown benchmark section(s) {unknown}; choose from {list(SECTIONS)}")
    machine, start = machine_info(), time.perf_counter()
    sections = []
    for name in chosen:
        env.say(f"[{name}] measuring ...")
        sections.append(_section(name)(env))
    machine["load average (1 min) at end"] = load_average()
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    return Report(sections, machine, library_versions(), generated, time.perf_counter() - start)


def write_report(report: Report, path: Path) -> Path:
    """Write the rendered report (creating its folder) and its sections' pictures next to it; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(report), encoding="utf-8")
    for section in report.sections:
        for figure in section.figures:
            figure.draw(path.parent / figure.file)
    return path
