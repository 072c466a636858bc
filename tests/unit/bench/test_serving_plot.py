"""The serving benchmark's pictures draw the load results the tables are computed from: each subject's
latency CDF and its requests/s per concurrency; `make bench` writes them next to docs/benchmarks.md,
which embeds them. One tiny real load run on loopback (bounded to 60 requests) feeds the same path."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from bench.harness import Report, Row, Section, Timing, render_markdown, write_report
from bench.loadgen import LoadResult, Target, run_load
from bench.serving_plot import (
    LATENCY_PICTURE,
    THROUGHPUT_PICTURE,
    plot_latency_cdf,
    plot_throughput,
    serving_figures,
)
from tests.live_server import served_on_loopback


def result(latencies_ms: list[float], concurrency: int, wall_s: float, completed: int | None = None) -> LoadResult:
    return LoadResult(tuple(sorted(v / 1e3 for v in latencies_ms)), 0, wall_s, concurrency, completed)


LOADS = {
    1: {"ours": result([1.0, 1.2, 0.9, 3.0], 1, 0.004), "mlflow serve": result([5.0, 6.0, 40.0], 1, 0.05)},
    8: {"ours": result([2.0, 2.5, 9.0, 1.5, 2.2], 8, 0.002), "mlflow serve": result([30.0, 35.0], 8, 0.01)},
}
TWO = {1: {"ours ×2": result([0.8, 1.0], 1, 0.002)}, 8: {"ours ×2": result([1.0, 1.1, 1.3], 8, 0.001)}}


def test_each_cdf_is_the_subjects_sorted_latencies_against_their_rank(tmp_path: Path) -> None:
    plotted = plot_latency_cdf(LOADS, tmp_path / LATENCY_PICTURE)
    assert (tmp_path / LATENCY_PICTURE).stat().st_size > 10_000
    for c, by_subject in LOADS.items():
        for subject, load in by_subject.items():
            curve = plotted[c][subject]
            assert curve["ms"] == pytest.approx([v * 1e3 for v in load.latencies])
            n = len(load.latencies)
            assert curve["share"] == pytest.approx([(i + 1) / n for i in range(n)])


def test_wrk_quantiles_draw_the_same_curve_at_wrks_resolution(tmp_path: Path) -> None:
    quantiles = result([1.0 + i / 100 for i in range(999)], 4, 1.0, completed=5_000)  # 999 quantiles, 5,000 requests
    plotted = plot_latency_cdf({4: {"ours": quantiles}}, tmp_path / LATENCY_PICTURE)
    assert len(plotted[4]["ours"]["ms"]) == 999
    assert plotted[4]["ours"]["share"][498] == pytest.approx(0.5, abs=0.001)  # the median quantile at 50 %


def test_throughput_is_each_subjects_requests_per_second_per_concurrency(tmp_path: Path) -> None:
    plotted = plot_throughput({"1 worker": LOADS, "2 workers": TWO}, tmp_path / THROUGHPUT_PICTURE)
    assert (tmp_path / THROUGHPUT_PICTURE).stat().st_size > 10_000
    assert plotted["ours"] == {"x": [1.0, 8.0], "y": [LOADS[1]["ours"].requests_per_s, LOADS[8]["ours"].requests_per_s]}
    assert plotted["ours"]["y"] == [1000.0, 2500.0]  # 4 requests in 4 ms; 5 in 2 ms
    assert plotted["mlflow serve"]["y"] == pytest.approx([60.0, 200.0])
    assert plotted["ours ×2"]["y"] == [1000.0, 3000.0]


def test_the_report_embeds_the_pictures_and_writing_it_draws_them_next_to_it(tmp_path: Path) -> None:
    timing = Timing((0.001,))
    section = Section(
        "Serving over HTTP", "intro", [Row("r", "a", "b", timing, timing)], [], serving_figures(LOADS, TWO)
    )
    report = Report([section], {"cores": "2"}, {"python": "3.11"}, "2026-12-07T00:00:00+00:00", 1.0)
    markdown = render_markdown(report)
    assert f"]({LATENCY_PICTURE})" in markdown
    assert f"]({THROUGHPUT_PICTURE})" in markdown
    path = write_report(report, tmp_path / "docs" / "benchmarks.md")
    for name in (LATENCY_PICTURE, THROUGHPUT_PICTURE):
        assert (path.parent / name).stat().st_size > 10_000


def test_a_tiny_real_load_on_loopback_is_drawn_as_measured(tmp_path: Path) -> None:
    app = FastAPI()

    @app.post("/predict")
    async def predict() -> dict[str, str]:
        return {"class": "setosa"}

    with served_on_loopback(app) as url:
        port = int(url.rsplit(":", 1)[1])
        target = Target(port, "/predict", b'{"x": 1}')
        loads = {c: {"tiny app": run_load(target, c, requests=30, cap_s=20)} for c in (1, 2)}
    assert all(load["tiny app"].ok == 30 for load in loads.values())
    cdfs = plot_latency_cdf(loads, tmp_path / LATENCY_PICTURE)
    rates = plot_throughput({"1 worker": loads}, tmp_path / THROUGHPUT_PICTURE)
    for c, load in loads.items():
        assert cdfs[c]["tiny app"]["ms"] == pytest.approx([v * 1e3 for v in load["tiny app"].latencies])
    assert rates["tiny app"]["y"] == [loads[1]["tiny app"].requests_per_s, loads[2]["tiny app"].requests_per_s]
