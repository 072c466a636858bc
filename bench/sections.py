"""Benchmark sections: the measurements behind docs/benchmarks.md, each against a baseline.

Concept: performance as evidence (DESIGN.md, "Performance targets"). Each function here is one
section of the report, ``(BenchEnv) -> Section``, named in ``bench.harness.SECTIONS``: CLI start-up
against importing only typer and rich, Great Expectations against the same row checks in plain
pandas, and the tracked, gated training step against a bare scikit-learn fit. Pairing every subject
with a baseline timed in the same run (``time_interleaved``) is what makes the ratios meaningful on
a noisy machine.

``bench.harness`` holds the timing and report machinery and loads this module only when a section
runs; the heavy libraries are imported inside the measurements, so importing either module stays
cheap. ``pandas_check`` and ``heavy_modules_imported`` are small enough to unit-test directly.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bench.harness import BenchEnv, Row, Section, Timing, format_duration, time_interleaved
from core.settings import Settings
from core.startup import configure_runtime
from pipelines.batches import generate_batch
from pipelines.data import build_raw_frame, ingest
from pipelines.fit import fit_and_evaluate
from pipelines.training_steps import load_data, run_training, train_candidate
from pipelines.validation import validate_frame

if TYPE_CHECKING:
    import pandas as pd

    from core.params import DatasetConfig

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
    return [sys.executable, "-c", "from cli.app import main; main()", "--help"]


def heavy_modules_imported(cwd: Path) -> list[str]:
    """Which of HEAVY_MODULES a fresh ``import cli.app`` drags in (should be none)."""
    code = f"import sys, cli.app; print(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    return _run([sys.executable, "-c", code], cwd).split()


def measure_cli(env: BenchEnv) -> Section:
    """``mlops-lab --help`` in a fresh process against importing only typer and rich."""
    cwd, helps = env.settings.project_dir, help_command()
    base, imports = [sys.executable, "-c", "import typer, rich"], [sys.executable, "-c", "import cli.app"]
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
        Row("import the CLI only", baseline, '`python -c "import cli.app"`', t["base"], t["imp"]),
        Row(
            "heavy modules imported by `import cli.app`",
            "none expected",
            ", ".join(heavy) or "none",
            target="none",
            passed=not heavy,
        ),
    ]
    notes = [
        f"Heavy modules looked for: {', '.join(HEAVY_MODULES)}. Subject command: `{' '.join(helps)}`.",
        "`--help` minus `import cli.app` is the time Typer spends building and rendering the help screen.",
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
