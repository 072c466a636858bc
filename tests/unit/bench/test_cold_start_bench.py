"""The cold-start benchmark: its table from probe figures, and the section run with one fresh process per probe.

Speed is never asserted; what is checked is that each probe really runs in its own process and reports
every phase, that a failing probe is an error and not a figure, and that the rows add up as they claim.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cold_start_bench import cold_start_section, fixture_row, measure_cold_start, run_probe
from bench.harness import BenchEnv, Report, render_markdown
from core.params import Params
from core.settings import Settings

REPO = Path(__file__).resolve().parents[3]


def test_the_rows_add_the_phases_of_each_fresh_process() -> None:
    handler = [
        {"import": 1.0, "init": 0.5, "first": 0.1, "warm": 0.002},
        {"import": 3.0, "init": 1.5, "first": 0.3, "warm": 0.004},
    ]
    sklearn = [{"import": 2.0, "registry": 0.5, "load": 0.2, "first": 0.01}] * 2
    onnx = [{"import": 0.5, "load": 0.02, "first": 0.001}] * 2
    section = cold_start_section({"handler": handler, "sklearn": sklearn, "onnx": onnx}, repeats=2, warm_requests=5)
    rows = {row.what: row for row in section.rows}
    cold = rows["cold start: import + lifespan + first request"]
    assert cold.subject_time is not None
    assert cold.subject_time.samples == pytest.approx((1.6, 4.8))
    assert cold.ratio == pytest.approx(3.2 / 0.003)
    model = rows["model load + first one-row score, from local files"]
    assert model.baseline_time is not None
    assert model.subject_time is not None
    assert model.baseline_time.samples == pytest.approx((0.21, 0.21))
    assert model.subject_time.samples == pytest.approx((0.021, 0.021))
    assert "The import is 62% of the cold start here." in section.notes[0]
    assert "## 1. Serverless cold start" in render_markdown(Report([section], {}, {}, "now", 0.0))


def test_a_failing_probe_is_an_error_not_a_figure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="probe 'onnx' failed"):
        run_probe("onnx", [str(tmp_path / "missing.onnx"), "[1, 2, 3, 4]"], {"PATH": ""}, REPO)


def test_the_fixture_row_follows_the_contract_order(params: Params) -> None:
    assert fixture_row(REPO, params.dataset.feature_names) == [5.1, 3.5, 1.4, 0.2]


@pytest.mark.slow
def test_the_section_runs_each_probe_in_a_fresh_process(settings: Settings, params: Params) -> None:
    said: list[str] = []
    section = measure_cold_start(BenchEnv(settings, params, say=said.append), repeats=1, warm_requests=1)
    assert next(row.what for row in section.rows) == "cold start: import + lifespan + first request"
    assert all(len(t.samples) == 1 for row in section.rows for t in (row.baseline_time, row.subject_time) if t)
    assert all(t.median > 0 for row in section.rows for t in (row.baseline_time, row.subject_time) if t)
    assert said[-1] == "[cold-start] fresh processes, round 1/1 ..."
