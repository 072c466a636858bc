"""The batch-scoring benchmark: its arithmetic and table on made-up figures, and the section on a small file.

Speed is never asserted; what is checked is that the section is registered, that rows/s, ratios, the rate
after the fixed cost and the break-even size are computed as the notes claim, and that a small run really
scores with all three subjects (plain, threads, a Dask LocalCluster) and reports every timing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from bench import harness
from bench.batch_bench import BatchTimings, batch_section, break_even, marginal_rate, measure_batch_scoring, rate
from bench.harness import BenchEnv, Report, Timing, render_markdown
from core.params import Params
from core.settings import Settings


def _timings(dask_full: float = 30.0, dask_tiny: float = 20.0) -> BatchTimings:
    return BatchTimings(
        rows=1_000_000,
        chunk_rows=100_000,
        tiny_rows=2_000,
        full={"plain": Timing((1.0, 3.0)), "threads": Timing((5.0,)), "dask": Timing((dask_full,))},
        tiny={"threads": Timing((1.0,)), "dask": Timing((dask_tiny,))},
        flow_body=Timing((3.5,)),
        load=Timing((0.1,)),
        model="OnnxModel",
        cores=2,
    )


def test_the_section_is_registered_under_its_name() -> None:
    assert harness._section("batch-scoring") is measure_batch_scoring


def test_rates_count_rows_per_second_at_the_median_and_beyond_the_fixed_cost() -> None:
    assert rate(1_000, Timing((1.0, 2.0, 4.0))) == pytest.approx(500.0)
    assert marginal_rate(1_002_000, 2_000, Timing((5.0,)), Timing((1.0,))) == pytest.approx(250_000.0)
    assert marginal_rate(1_000, 1_000, Timing((1.0,)), Timing((1.5,))) is None  # no time beyond the fixed cost
    # A full run that took no longer than the slowest small one: the difference of medians is noise, not a rate.
    assert marginal_rate(1_000_000, 2_000, Timing((27.0, 36.0)), Timing((29.6, 32.9))) is None


def test_break_even_is_where_the_faster_rate_repays_the_larger_fixed_cost() -> None:
    # 10 s more up front, 1 µs less per row: even after 10,000,000 rows; a slower or unknown rate never is.
    assert break_even(1.0, 11.0, 500_000.0, 1_000_000.0) == pytest.approx(10_000_000.0)
    assert break_even(1.0, 11.0, 500_000.0, 400_000.0) is None
    assert break_even(1.0, 11.0, None, 400_000.0) is None


def test_the_table_shows_rows_per_second_and_ratios_of_each_subject() -> None:
    section = batch_section(_timings())
    rows = {row.what: row for row in section.rows}
    one = rows["score 1,000,000 rows: the flow in one process"]
    assert one.ratio == pytest.approx(2.5)  # 5 s against the plain median of 2 s
    assert one.baseline == "plain: read Parquet + `score`, 1 process (500,000 rows/s)"
    assert one.subject == "flow, threads, 1 worker (200,000 rows/s)"
    assert rows["score 1,000,000 rows: Dask against one process"].ratio == pytest.approx(6.0)
    assert rows["fixed cost: a run of 2,000 rows in 2 chunks"].ratio == pytest.approx(20.0)
    assert all(row.passed is None for row in section.rows)  # measured, never judged
    assert "Beyond it, threads score 249,500 rows/s and Dask 99,800 rows/s" in section.notes[3]
    assert "no file size makes it finish first" in section.notes[3]
    assert "## 1. Batch scoring" in render_markdown(Report([section], {}, {}, "now", 0.0))


def test_the_notes_name_the_size_where_dask_catches_up_when_it_scores_faster() -> None:
    # Dask: 19 s (20 - 1) more up front; beyond it 998,000 rows take 1 s against 4 s on threads: 19 / (3 s / 998,000).
    notes = batch_section(_timings(dask_full=21.0, dask_tiny=20.0)).notes
    assert "Dask would finish first from about 6,320,667 rows" in notes[3]


def test_the_notes_say_when_the_rows_are_lost_in_the_start_up_noise() -> None:
    timings = _timings()
    full = {**timings.full, "dask": Timing((27.0, 36.0))}
    tiny = {**timings.tiny, "dask": Timing((29.6, 32.9))}
    section = batch_section(replace(timings, full=full, tiny=tiny))
    assert "and Dask —;" in section.notes[3]
    assert "the start-up is all this run can see" in section.notes[3]


@pytest.fixture
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.mark.slow
def test_the_section_scores_a_small_file_plainly_on_threads_and_on_dask(
    prefect_harness: None, settings: Settings, params: Params
) -> None:
    said: list[str] = []
    section = measure_batch_scoring(
        BenchEnv(settings, params, say=said.append), rows=20_000, chunk_rows=5_000, repeats=1
    )
    assert [row.what for row in section.rows][:3] == [
        "score 20,000 rows: the flow in one process",
        "score 20,000 rows: the flow on Dask",
        "score 20,000 rows: Dask against one process",
    ]
    timings = [t for row in section.rows for t in (row.baseline_time, row.subject_time) if t]
    assert all(len(t.samples) == 1 and t.median > 0 for t in timings)
    assert "the flow cuts it into 4 chunks of 5,000 rows" in section.notes[0]
    assert said[-1] == "[batch-scoring] fixed cost: a run of 2,000 rows on each runner ..."
