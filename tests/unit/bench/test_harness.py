"""The benchmark harness: timing helpers, the pandas baseline and the Markdown report.

Speed itself is never asserted here (it is measured by `make bench`); these tests check that the
harness counts, orders and reports correctly, given fake or cheap measurements.
"""

from __future__ import annotations

import platform
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench import harness as bench
from bench.harness import (
    COLUMNS,
    BenchEnv,
    Report,
    Row,
    Section,
    Timing,
    format_duration,
    library_versions,
    machine_info,
    render_markdown,
    run_bench,
    time_calls,
    time_interleaved,
    write_report,
)
from bench.sections import heavy_modules_imported, pandas_check
from cli.app import app
from core.params import Params
from core.settings import Settings

REPO = Path(__file__).resolve().parents[3]
HEADER = "| " + " | ".join(COLUMNS) + " |"


@pytest.fixture
def bench_settings(tmp_path: Path) -> Settings:
    """Settings for the harness only: nothing here touches MLflow, so no store is needed."""
    return Settings(project_dir=REPO, state_dir=tmp_path / "state")


@pytest.fixture
def clean_frame(params: Params) -> pd.DataFrame:
    """One valid row per class: every feature in the middle of its range."""
    cfg = params.dataset
    features = {name: [(spec.min + spec.max) / 2] * len(cfg.classes) for name, spec in cfg.features.items()}
    return pd.DataFrame({**features, cfg.target: list(cfg.classes)})


def _report() -> Report:
    rows = [
        Row("help", "base cmd", "subject cmd", Timing((0.1, 0.3, 0.2)), Timing((0.4,)), "subject < 0.5 s", True),
        Row("heavy", "none expected", "mlflow", target="none", passed=False),
    ]
    return Report(
        sections=[
            Section("CLI start-up", "intro one", rows, ["a note"]),
            Section("Training", "intro two", [Row("fit", "sklearn", "a | b", Timing((0.2,)), Timing((0.8, 0.8)))], []),
        ],
        machine={"platform": "Linux-test", "CPU": "Test CPU 9000"},
        versions={"python": "3.11.7", "mlflow": "3.17.2"},
        generated="2026-11-23T00:00:00+00:00",
        duration_s=42.0,
    )


def fake_section(env: BenchEnv) -> Section:
    """A section that measures something cheap, to run the whole mechanism in a unit test."""
    timing = time_calls(lambda: sum(range(100)), repeats=3)
    return Section("Fake", f"project {env.settings.project_dir.name}", [Row("sum", "x", "y", timing, timing)], [])


def test_report_has_context_one_section_per_table_and_all_columns() -> None:
    md = render_markdown(_report())
    assert md.startswith("# Benchmarks\n")
    assert "`make bench`" in md
    assert "noisy machine" in md
    for heading in ("## Machine", "## Versions", "## 1. CLI start-up", "## 2. Training"):
        assert f"\n{heading}\n" in md
    assert md.count(HEADER) == 2
    assert "| CPU | Test CPU 9000 |" in md
    assert "| mlflow | 3.17.2 |" in md
    assert "\n- a note" in md


def test_rows_show_medians_ratios_targets_and_verdicts() -> None:
    md = render_markdown(_report())
    assert (
        "| help | base cmd | 200 ms (100 ms–300 ms, n=3) | subject cmd | 400 ms (n=1) "
        "| 2.00× | subject < 0.5 s | pass |"
    ) in md
    assert "| heavy | none expected | — | mlflow | — | — | none | **FAIL** |" in md
    assert "| a \\| b | 800 ms (800 ms–800 ms, n=2) | 4.00× | — | info |" in md


@pytest.mark.parametrize(
    ("seconds", "shown"), [(2.5, "2.50 s"), (0.0123, "12.3 ms"), (4.56e-5, "45.6 µs"), (0.4, "400 ms")]
)
def test_durations_use_a_readable_unit(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_timing_median_and_per_unit() -> None:
    timing = Timing((3.0, 1.0, 2.0))
    assert timing.median == 2.0
    assert timing.per(4).samples == (0.75, 0.25, 0.5)


def test_ratio_needs_both_timings_and_keeps_small_ratios_readable() -> None:
    assert Row("x", "a", "b", baseline_time=Timing((1.0,))).ratio is None
    assert Row("x", "a", "b", Timing((2.0,)), Timing((1.0,))).ratio == 0.5
    assert Row("x", "a", "b", Timing((1.0,)), Timing((0.0123,))).cells()[5] == "0.012×"


def test_time_calls_runs_the_warmup_untimed_then_the_repeats() -> None:
    calls: list[int] = []
    timing = time_calls(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5
    assert len(timing.samples) == 3
    assert all(s >= 0 for s in timing.samples)


def test_time_interleaved_alternates_the_subjects() -> None:
    order: list[str] = []
    timings = time_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3)
    assert order == ["a", "b"] * 3
    assert {name: len(t.samples) for name, t in timings.items()} == {"a": 3, "b": 3}


def test_a_real_cheap_measurement_gives_a_consistent_median() -> None:
    timing = time_calls(lambda: sorted(range(2000, 0, -1)), repeats=5)
    assert min(timing.samples) <= timing.median <= max(timing.samples)
    assert timing.cell().endswith("n=5)")


def test_pandas_baseline_accepts_clean_data_and_catches_each_defect(clean_frame: pd.DataFrame, params: Params) -> None:
    cfg = params.dataset
    assert pandas_check(clean_frame, cfg)
    feature = cfg.feature_names[0]
    out_of_range, nulls, unknown = clean_frame.copy(), clean_frame.copy(), clean_frame.copy()
    out_of_range.loc[0, feature] = cfg.features[feature].max + 1
    nulls.loc[0, feature] = None
    unknown.loc[0, cfg.target] = "not-a-class"
    assert not pandas_check(out_of_range, cfg)
    assert not pandas_check(nulls, cfg)
    assert not pandas_check(unknown, cfg)


def test_machine_and_versions_name_what_the_figures_depend_on() -> None:
    machine, versions = machine_info(), library_versions()
    assert {"platform", "CPU", "cores", "memory"} <= set(machine)
    assert versions["python"] == platform.python_version()
    assert versions["mlflow"] != "not installed"


def test_importing_the_cli_pulls_in_no_heavy_library() -> None:
    assert heavy_modules_imported(REPO) == []


def test_run_bench_runs_a_registered_section_and_writes_the_report(
    bench_settings: Settings, params: Params, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(bench.SECTIONS, "fake", f"{__name__}:fake_section")
    said: list[str] = []
    report = run_bench(BenchEnv(bench_settings, params, say=said.append), ["fake"])
    assert [s.title for s in report.sections] == ["Fake"]
    assert said == ["[fake] measuring ..."]
    assert "load average (1 min) at end" in report.machine
    path = write_report(report, tmp_path / "docs" / "benchmarks.md")
    assert "## 1. Fake" in path.read_text(encoding="utf-8")


def test_run_bench_rejects_an_unknown_section(bench_settings: Settings, params: Params) -> None:
    with pytest.raises(ValueError, match="choose from"):
        run_bench(BenchEnv(bench_settings, params), ["nope"])


def test_cli_offers_bench_and_rejects_an_unknown_section() -> None:
    runner = CliRunner()
    assert "--only" in runner.invoke(app, ["bench", "--help"]).output
    result = runner.invoke(app, ["bench", "--only", "nope"])
    assert result.exit_code == 2
    assert "unknown section" in result.output
