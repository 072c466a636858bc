"""The serving benchmark as pictures: latency CDFs per subject, and requests/s against concurrency.

Concept: performance as evidence (C43). A p50 and a p99 are two points of a distribution; the CDF
shows all of it (a long tail, two modes, a subject fast at the median and slow at the tail). And
throughput against concurrency shows where a server stops scaling: one uvicorn worker is one core,
while micro-batching lets ours serve more per core as requests arrive together. Drawn from the
`bench.loadgen.LoadResult` of each subject and concurrency that the tables are computed from, by
``make bench`` next to docs/benchmarks.md.

With wrk the latencies are its histogram's 999 quantiles, not one value per request: the CDF is then
drawn through those quantiles, which is the same curve at the resolution wrk keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bench.harness import Figure
from bench.loadgen import LoadResult
from core.figures import drawn, pyplot, save

LATENCY_PICTURE = "benchmarks-latency-cdf.png"
THROUGHPUT_PICTURE = "benchmarks-throughput.png"
Loads = Mapping[int, Mapping[str, LoadResult]]  # concurrency -> subject -> the combined rounds


def cdf(latencies: tuple[float, ...]) -> tuple[list[float], list[float]]:
    """Latencies in ms (sorted) and the share of requests at or below each: rank / count."""
    ordered = sorted(latencies)
    return [v * 1e3 for v in ordered], [(i + 1) / len(ordered) for i in range(len(ordered))]


def plot_latency_cdf(loads: Loads, path: Path) -> dict[int, dict[str, dict[str, list[float]]]]:
    """One panel per concurrency, one CDF per subject (log latency axis).

    Returns per concurrency and subject the curve as drawn: ``ms`` (x) and ``share`` (y).
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(loads), figsize=(4.2 * len(loads), 3.8), squeeze=False)
    plotted: dict[int, dict[str, dict[str, list[float]]]] = {}
    for ax, (concurrency, by_subject) in zip(axes[0], loads.items(), strict=True):
        plotted[concurrency] = {}
        for subject, result in by_subject.items():
            if not result.latencies:
                continue  # every request failed: nothing to draw (the table says FAILED)
            (line,) = ax.plot(*cdf(result.latencies), drawstyle="steps-post", lw=1.2, label=subject)
            ms, share = drawn(line)
            plotted[concurrency][subject] = {"ms": [float(v) for v in ms], "share": share}
        ax.set_xscale("log")
        ax.axhline(0.99, color="grey", lw=0.6, ls=":")
        ax.set(xlabel="latency (ms, log scale)", ylim=(0, 1.01), title=f"concurrency {concurrency}")
        ax.legend(fontsize=7, loc="lower right")
    axes[0, 0].set_ylabel("share of requests at or below (dotted: p99)")
    save(fig, path)
    return plotted


def plot_throughput(series: Mapping[str, Loads], path: Path) -> dict[str, dict[str, list[float]]]:
    """Requests/s against concurrency, one line per subject; ``series`` names groups (e.g. "1 worker").

    Returns per subject the concurrency levels (``x``) and requests/s (``y``) as drawn.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    plotted: dict[str, dict[str, list[float]]] = {}
    for group, (name, loads) in enumerate(series.items()):
        levels = sorted(loads)
        subjects = list(dict.fromkeys(s for c in levels for s in loads[c]))
        for subject in subjects:
            x = [c for c in levels if subject in loads[c]]
            y = [loads[c][subject].requests_per_s for c in x]
            style = "-o" if group == 0 else "--s"
            (line,) = ax.plot(x, y, style, ms=4, label=f"{subject} ({name})")
            xs, ys = drawn(line)
            plotted[subject] = {"x": [float(v) for v in xs], "y": ys}
    ax.set_xscale("log", base=2)
    levels = sorted({c for loads in series.values() for c in loads})
    ax.set_xticks(levels, [str(c) for c in levels])
    ax.set(xlabel="concurrent connections (log scale)", ylabel="requests/s", ylim=(0, None))
    ax.set_title("Throughput against concurrency")
    ax.legend(fontsize=7, loc="upper left")
    save(fig, path)
    return plotted


def serving_figures(loads: Loads, two_workers: Loads) -> tuple[Figure, ...]:
    """The serving section's two pictures, drawn when the report is written."""
    return (
        Figure(LATENCY_PICTURE, "Latency CDF per subject at each concurrency", lambda p: plot_latency_cdf(loads, p)),
        Figure(
            THROUGHPUT_PICTURE,
            "Requests/s against concurrency per subject, one worker and two",
            lambda p: plot_throughput({"1 worker": loads, "2 workers": two_workers}, p),
        ),
    )
