"""Benchmarks: performance targets measured against a baseline, never asserted in tests.

Concept: performance as evidence (DESIGN.md, "Performance targets"). A wall-clock assertion in a
test is flaky on a shared 2-core CI box and says nothing about *why* something is slow. Instead,
``make bench`` times each subject next to a baseline in the same run, interleaving their repeats
so that a burst of machine load hits both alike. It reports medians and the subject/baseline
ratio, and writes ``docs/benchmarks.md`` with the machine, the versions and the command. A ratio
("tracking makes a training run N times slower than a bare fit") survives a noisy machine; an
absolute time does not.

Each section is a function ``(BenchEnv) -> Section`` listed in ``SECTIONS``; serving and
monitoring add theirs the same way (``"name": "package.module:function"``, imported only when run).
The timing helpers and the Markdown rendering are pure and unit-tested; the measurements import the
heavy libraries inside, so importing this module (and ``mlops-lab --help``) stays cheap.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from lab.settings import Settings
    from pipelines.params import DatasetConfig, Params

LIBRARIES = ("scikit-learn", "mlflow", "prefect", "great-expectations", "pandas", "numpy")
COMMAND = "make bench"
# Sections in report order: name -> "module:function" taking a BenchEnv and returning a Section.
SECTIONS = {
    "cli": "lab.bench:measure_cli",
    "validation": "lab.bench:measure_validation",
    "training": "lab.bench:measure_training",
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
class Section:
    """One table of the report, with a sentence before it and notes after it."""

    title: str
    intro: str
    rows: list[Row]
    notes: list[str]


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
    """Python and the installed versions of the libraries measured (read from metadata, not imported)."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


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
    """Write the rendered report (creating its folder) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(report), encoding="utf-8")
    return path


# ---- measurements ----------------------------------------------------------------------------
HEAVY_MODULES = ("mlflow", "prefect", "great_expectations", "sklearn", "evidently", "pandas")
HELP_TARGET_S = 0.5
CLI_REPEATS, SMALL_REPEATS, LARGE_REPEATS, TRAIN_REPEATS = 7, 7, 3, 5
SMALL_ROWS, LARGE_ROWS = 200, 100_000


def _run(cmd: list[str], cwd: Path) -> str:
    """Run a command to completion and return its stdout; fail loudly if it fails."""
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"`{' '.join(cmd)}` exited with {done.returncode}: {done.stderr[-400:]}; run it by hand")
    return done.stdout


def help_command() -> list[str]:
    """``mlops-lab --help`` through the installed console script (or its module, if absent)."""
    script = Path(sys.executable).with_name("mlops-lab")
    if script.exists():
        return [str(script), "--help"]
    return [sys.executable, "-c", "from lab.cli import main; main()", "--help"]


def heavy_modules_imported(cwd: Path) -> list[str]:
    """Which of HEAVY_MODULES a fresh ``import lab.cli`` drags in (should be none)."""
    code = f"import sys, lab.cli; print(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    return _run([sys.executable, "-c", code], cwd).split()


def measure_cli(env: BenchEnv) -> Section:
    """``mlops-lab --help`` in a fresh process against importing only typer and rich."""
    cwd, helps = env.settings.project_dir, help_command()
    base, imports = [sys.executable, "-c", "import typer, rich"], [sys.executable, "-c", "import lab.cli"]
    for cmd in (base, imports, helps):  # warm the OS file cache once for each
        _run(cmd, cwd)
    t = time_interleaved(
        {n: partial(_run, c, cwd) for n, c in [("base", base), ("imp", imports), ("help", helps)]}, CLI_REPEATS
    )
    heavy = heavy_modules_imported(cwd)
    baseline, target = '`python -c "import typer, rich"`', f"subject < {HELP_TARGET_S} s"
    rows = [
        Row(
            "`mlops-lab --help`",
            baseline,
            "`mlops-lab --help`",
            t["base"],
            t["help"],
            target,
            t["help"].median < HELP_TARGET_S,
        ),
        Row("import the CLI only", baseline, '`python -c "import lab.cli"`', t["base"], t["imp"]),
        Row(
            "heavy modules imported by `import lab.cli`",
            "none expected",
            ", ".join(heavy) or "none",
            target="none",
            passed=not heavy,
        ),
    ]
    notes = [
        f"Heavy modules looked for: {', '.join(HEAVY_MODULES)}. Subject command: `{' '.join(helps)}`.",
        "`--help` minus `import lab.cli` is the time Typer spends building and rendering the help screen.",
    ]
    return Section("CLI start-up", "Each command is its own fresh Python process, as a user would run it.", rows, notes)


def pandas_check(frame: pd.DataFrame, cfg: DatasetConfig) -> bool:
    """The baseline: the row-level rules in plain pandas (no nulls, values in range, known classes)."""
    if frame[[*cfg.feature_names, cfg.target]].isna().any().any():
        return False
    in_range = all(frame[name].between(spec.min, spec.max).all() for name, spec in cfg.features.items())
    return bool(in_range and frame[cfg.target].isin(cfg.classes).all())


def _per_row(engine: str, small: Timing, large: Timing) -> Row:
    """Cost per row of the large batch against the small one: at most 1x means at most linear growth."""
    base, subject = small.per(SMALL_ROWS), large.per(LARGE_ROWS)
    return Row(
        f"{engine} cost per row, {LARGE_ROWS:,} vs {SMALL_ROWS} rows",
        f"per row at {SMALL_ROWS} rows",
        f"per row at {LARGE_ROWS:,} rows",
        base,
        subject,
        "≤ 1.00× (at most linear)",
        subject.median <= base.median,
    )


def _marginal(small: Timing, large: Timing) -> str:
    """Cost of one extra row, from the medians at the two batch sizes."""
    return format_duration(max(large.median - small.median, 0.0) / (LARGE_ROWS - SMALL_ROWS))


def measure_validation(env: BenchEnv) -> Section:
    """Great Expectations on a small and a large clean batch against the same checks in pandas."""
    from pipelines.batches import generate_batch
    from pipelines.data import build_raw_frame
    from pipelines.validation import validate_frame

    # 100,000 distinct rows do not fit on a 0.1 cm grid: same contract, 0.01 cm precision.
    dataset = env.params.dataset.model_copy(update={"decimals": max(env.params.dataset.decimals, 2)})
    params, cfg = env.params.model_copy(update={"dataset": dataset}), dataset
    reference = build_raw_frame(cfg, params.ingest)
    small = generate_batch("clean", reference, params, rows=SMALL_ROWS, seed=1)
    large = generate_batch("clean", reference, params, rows=LARGE_ROWS, seed=2)
    start = time.perf_counter()
    gx_ok = [validate_frame(small, cfg).success]  # cold: imports great_expectations
    cold = Timing((time.perf_counter() - start,))
    gx_ok.append(validate_frame(large, cfg).success)  # warm-up at full size, and its verdict
    pd_ok = [pandas_check(small, cfg), pandas_check(large, cfg)]
    t = time_interleaved(
        {"pd_small": lambda: pandas_check(small, cfg), "gx_small": lambda: validate_frame(small, cfg)}, SMALL_REPEATS
    ) | time_interleaved(
        {"pd_large": lambda: pandas_check(large, cfg), "gx_large": lambda: validate_frame(large, cfg)}, LARGE_REPEATS
    )
    rows = [
        Row(f"validate {SMALL_ROWS} rows", "pandas checks", "GX `validate_frame`", t["pd_small"], t["gx_small"]),
        Row(f"validate {LARGE_ROWS:,} rows", "pandas checks", "GX `validate_frame`", t["pd_large"], t["gx_large"]),
        _per_row("GX", t["gx_small"], t["gx_large"]),
        _per_row("pandas", t["pd_small"], t["pd_large"]),
        Row("GX cold start", f"warm call, {SMALL_ROWS} rows", "first call (imports GX)", t["gx_small"], cold),
    ]
    notes = [
        f"Batches: `generate_batch('clean', ...)` with seeds 1 and 2, at {cfg.decimals} decimals. "
        f"Batch valid (small, large) per GX: {gx_ok}; per pandas: {pd_ok}.",
        "GX also checks what the baseline does not: column set, types, row count, batch means and "
        "duplicate rows. It builds an in-memory context per call (no Data Docs here).",
        "A per-row ratio below 1 means a fixed cost per call dominates small batches: growth is sub-linear. "
        f"Beyond {SMALL_ROWS} rows, each extra row costs GX {_marginal(t['gx_small'], t['gx_large'])} "
        f"and pandas {_marginal(t['pd_small'], t['pd_large'])}.",
    ]
    return Section("Data validation", "One clean batch, checked by the GX contract and by plain pandas.", rows, notes)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Swallow MLflow's registration notices (its log stream writes to whatever sys.stderr is now)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _single_threaded(fn: Callable[[], object]) -> object:
    """Call ``fn`` with the BLAS and OpenMP pools limited to one thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return fn()


def measure_training(env: BenchEnv) -> Section:
    """A bare scikit-learn fit against the full training step (validate, log, gate, register)."""
    from threadpoolctl import threadpool_info

    from lab.settings import Settings, configure_runtime
    from pipelines.data import ingest
    from pipelines.train import fit_and_evaluate
    from pipelines.training import load_data, run_training, train_candidate

    params = env.params
    with tempfile.TemporaryDirectory(prefix="mlops-lab-bench-") as tmp:
        # Explicit None URIs: a bench must never write to a registry that MLOPS_* points at.
        settings = Settings(
            project_dir=env.settings.project_dir,
            state_dir=Path(tmp) / "state",
            tracking_uri=None,
            registry_uri=None,
            artifact_root=None,
        )
        configure_runtime(settings)
        data = load_data(ingest(params.dataset, params.ingest, Path(tmp) / "train.csv"))
        fit_and_evaluate(data.frame, params)  # warm-up: sklearn imports, first fit
        threads = max((pool["num_threads"] for pool in threadpool_info()), default=1)
        loaded = [m for m in HEAVY_MODULES if m in sys.modules]
        with _quiet():
            start = time.perf_counter()
            first = run_training(settings, params, data_path=data.path)
            cold = Timing((time.perf_counter() - start,))
            t = time_interleaved(
                {
                    "fit": lambda: fit_and_evaluate(data.frame, params),
                    "fit1": lambda: _single_threaded(lambda: fit_and_evaluate(data.frame, params)),
                    "log": lambda: train_candidate(settings, params, data),
                    "full": lambda: run_training(settings, params, data_path=data.path),
                },
                TRAIN_REPEATS,
            )
    rows = [
        Row(
            "fit + MLflow tracking",
            "`fit_and_evaluate` (sklearn)",
            "`train_candidate` (+ MLflow run, model)",
            t["fit"],
            t["log"],
        ),
        Row(
            "whole training step",
            "`fit_and_evaluate` (sklearn)",
            "`run_training` (+ GX, MLflow, gate, registry)",
            t["fit"],
            t["full"],
        ),
        Row("cold start", "warm `run_training`", "first `run_training` (imports, new MLflow DB)", t["full"], cold),
        Row("BLAS threads", f"`fit_and_evaluate`, {threads} threads", "same, 1 thread", t["fit"], t["fit1"]),
    ]
    notes = [
        f"Iris, {len(data.frame)} rows, {params.train.estimator}, {params.train.cv_folds}-fold CV; "
        f"a fresh SQLite MLflow store in a temporary folder. The first run ended `{first.status}`.",
        "Warm runs retrain with a champion in place, so the gate also loads and scores the champion.",
        f"Already imported before the cold start: {', '.join(loaded) or 'none'}.",
        f"BLAS threads: the default ({threads}, one per core) against `threadpoolctl.threadpool_limits(1)`. "
        "On a tiny problem and a busy machine, threads that wait for each other can cost more than they give.",
    ]
    return Section(
        "Training", "The same data and params: pure scikit-learn against the tracked, gated step.", rows, notes
    )
