"""Drift benchmark: what a data-drift check costs as the window grows, against plain scipy.

Concept: performance as evidence (DESIGN.md, "Performance targets"), applied to data drift (C32).
A monitoring check runs on a schedule over a window of the prediction log, so its cost per window
size decides how large a window the schedule can afford. ``data_drift`` (Evidently's
``DataDriftPreset`` plus our reading of its snapshot) is timed on clean windows of 1,000, 10,000 and
100,000 rows against a fixed reference (raw iris), side by side with the same statistics done by
hand (scipy's two-sample K-S per feature): the ratio is Evidently's overhead, and the cost per
1,000 rows at each size against the smallest shows whether growth is at most linear.

``measure_drift`` is the ``drift`` section of ``mlops-lab bench``; ``mlops-lab bench --only drift
--out FILE`` runs only this section and writes it to FILE instead of docs/benchmarks.md. Heavy
libraries are imported inside the functions.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bench.harness import BenchEnv, Row, Section, Timing, format_duration, time_interleaved
from monitoring.data_drift import data_drift
from pipelines.batches import generate_batch
from pipelines.data import build_raw_frame

if TYPE_CHECKING:
    import pandas as pd

    from core.findings import Finding

SIZES = (1_000, 10_000, 100_000)
REPEATS = {1_000: 5, 10_000: 5, 100_000: 3}


def scipy_drift(reference: pd.DataFrame, current: pd.DataFrame, features: Sequence[str], alpha: float = 0.05) -> int:
    """The baseline: how many features a bare two-sample K-S test calls drifted (what Evidently runs here)."""
    from scipy.stats import ks_2samp

    return sum(bool(ks_2samp(reference[f], current[f]).pvalue < alpha) for f in features)


def per_thousand(size: int, timing: Timing) -> Timing:
    """Seconds per 1,000 rows of a window of ``size`` rows."""
    return Timing(tuple(s * 1000 / size for s in timing.samples))


def linearity_row(base_size: int, base: Timing, size: int, subject: Timing) -> Row:
    """Cost per 1,000 rows at ``size`` against ``base_size``: at most 1x means growth is at most linear."""
    small, large = per_thousand(base_size, base), per_thousand(size, subject)
    return Row(
        f"`data_drift` cost per 1k rows, {size:,} vs {base_size:,} rows",
        f"per 1k rows at {base_size:,}",
        f"per 1k rows at {size:,}",
        small,
        large,
        "≤ 1.00× (at most linear)",
        large.median <= small.median,
    )


def measure_drift(env: BenchEnv, sizes: Sequence[int] = SIZES) -> Section:
    """``data_drift`` on clean windows of each size against scipy's K-S on the same columns."""
    sizes = sorted(sizes)
    # 100,000 rows at 0.1 cm cannot all differ; the drift check does not need them to.
    dataset = env.params.dataset.model_copy(update={"unique_rows": False})
    params = env.params.model_copy(update={"dataset": dataset})
    features, mon = dataset.feature_names, params.monitoring
    reference = build_raw_frame(env.params.dataset, params.ingest)
    windows = {n: generate_batch("clean", reference, params, rows=n, seed=i) for i, n in enumerate(sizes, start=1)}
    base = sizes[0]
    start = time.perf_counter()
    data_drift(reference, windows[base], features, mon)  # cold: imports Evidently
    cold = Timing((time.perf_counter() - start,))
    timings: dict[int, dict[str, Timing]] = {}
    verdicts: dict[int, Finding] = {}
    for n in sizes:
        env.say(f"[drift] {n:,} rows ...")
        verdicts[n] = data_drift(reference, windows[n], features, mon)  # warm-up at this size, and its verdict
        calls: dict[str, Callable[[], object]] = {
            "scipy": partial(scipy_drift, reference, windows[n], features),
            "drift": partial(data_drift, reference, windows[n], features, mon),
        }
        timings[n] = time_interleaved(calls, REPEATS.get(n, 3))
    with tempfile.TemporaryDirectory(prefix="mlops-lab-bench-drift-") as tmp:
        with_reports = partial(data_drift, reference, windows[base], features, mon, Path(tmp))
        plain = partial(data_drift, reference, windows[base], features, mon)
        saved = time_interleaved({"plain": plain, "html": with_reports}, 3)
    rows = [
        Row(f"data drift, {n:,} rows", "scipy K-S per feature", "`data_drift` (Evidently)", t["scipy"], t["drift"])
        for n, t in timings.items()
    ]
    rows += [linearity_row(base, timings[base]["drift"], n, timings[n]["drift"]) for n in sizes[1:]]
    warm = timings[base]["drift"]
    rows += [
        Row("Evidently cold start", f"warm call, {base:,} rows", "first call (imports Evidently)", warm, cold),
        Row(f"HTML + JSON report, {base:,} rows", "`data_drift`", "with `out_dir`", saved["plain"], saved["html"]),
    ]
    first = verdicts[base].details["features"]
    method = next(iter(first.values()))["method"] if first else "?"
    largest = sizes[-1]
    marginal = max(timings[largest]["drift"].median - timings[base]["drift"].median, 0.0) / (largest - base) * 1000
    notes = [
        f"Reference: raw iris, {len(reference)} rows, fixed. Windows: `generate_batch('clean', ...)`, "
        f"seeds 1–{len(sizes)}. "
        f"Evidently chose `{method}` (it picks by reference size, so every window size used the same test).",
        "Verdicts on the clean windows: "
        + ", ".join(
            f"{n:,} rows {f.status} ({len(f.details.get('drifted_features', []))} drifted)" for n, f in verdicts.items()
        )
        + (
            ". A bigger window has more power: it can flag the small gap between the generator and iris itself."
            if any(f.fired for f in verdicts.values())
            else ": no false alarm at any size."
        ),
        f"Beyond {base:,} rows, each further 1,000 rows cost `data_drift` {format_duration(marginal)}.",
    ]
    return Section(
        "Data drift",
        "One drift check per window size (Evidently) against the same K-S tests in scipy, reference fixed.",
        rows,
        notes,
    )


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)
