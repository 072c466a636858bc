"""Findings over time: the runs come back from the shared database grouped and in order, and the picture
draws each check's score and threshold per run, its fired and inconclusive runs, as they were saved."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.findings import Finding, finding_runs, history_table, save_findings
from monitoring.findings_plot import PICTURE, plot_findings, run_label, write_findings_picture
from serving.prediction_log import make_engine
from tests.fresh_database import drop_our_tables

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def run(data: float | None, prediction: float, status: str = "ok") -> list[Finding]:
    """One monitoring run: data drift (score None when inconclusive) and prediction drift."""
    data_status = "inconclusive" if data is None else status
    return [
        Finding("data_drift", data_status, data, 0.5, "share of drifted features"),  # type: ignore[arg-type]
        Finding("prediction_drift", "ok", prediction, 0.05, "p-value"),
    ]


RUNS = [run(0.0, 0.01), run(0.25, 0.02), run(None, 0.01), run(0.75, 0.04, "fired")]


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    engine = make_engine(database_url)
    drop_our_tables(engine)  # PostgreSQL outlives a test; the next open migrates from nothing
    for i, findings in enumerate(RUNS):
        save_findings(engine, findings, now=T0 + timedelta(hours=i))
    return engine


def test_runs_come_back_oldest_first_each_with_the_findings_saved_together(engine: sa.Engine) -> None:
    runs = finding_runs(engine)
    assert [ts.replace(tzinfo=UTC) for ts, _ in runs] == [T0 + timedelta(hours=i) for i in range(4)]
    assert [[(f.check, f.score) for f in findings] for _, findings in runs] == [
        [(f.check, f.score) for f in findings] for findings in RUNS
    ]
    assert [ts.replace(tzinfo=UTC) for ts, _ in finding_runs(engine, limit=2)] == [
        T0 + timedelta(hours=2),
        T0 + timedelta(hours=3),
    ]  # the newest runs, still oldest first
    with engine.begin() as conn:
        history_table.drop(conn)
    assert finding_runs(engine) == []


def test_the_picture_draws_each_checks_scores_thresholds_and_verdicts(tmp_path: Path) -> None:
    labelled = [(f"run {i}", findings) for i, findings in enumerate(RUNS)]
    plotted = plot_findings(labelled, tmp_path / PICTURE)
    assert (tmp_path / PICTURE).stat().st_size > 10_000
    data = plotted["data_drift"]
    assert data["score"][:2] == [0.0, 0.25]
    assert math.isnan(data["score"][2])  # inconclusive: no score, a grey tick instead
    assert data["score"][3] == 0.75
    assert data["threshold"] == [0.5] * 4
    assert data["fired"] == [3]
    assert data["inconclusive"] == [2]
    prediction = plotted["prediction_drift"]
    assert prediction["score"] == [f.score for _, (_, f) in labelled]
    assert prediction["threshold"] == [0.05] * 4
    assert prediction["fired"] == []


def test_a_check_missing_from_a_run_is_a_gap_not_a_zero(tmp_path: Path) -> None:
    runs = [("a", RUNS[0]), ("b", RUNS[1][1:])]  # the second run has no data drift finding
    plotted = plot_findings(runs, tmp_path / PICTURE)
    assert plotted["data_drift"]["score"][0] == 0.0
    assert math.isnan(plotted["data_drift"]["score"][1])
    with pytest.raises(ValueError, match="mlops-lab monitor"):
        plot_findings([], tmp_path / "empty.png")


def test_the_picture_of_the_history_is_written_next_to_the_report(engine: sa.Engine, tmp_path: Path) -> None:
    out_dir = tmp_path / "reports" / "check-1"
    assert write_findings_picture(engine, out_dir) == out_dir / PICTURE
    assert (out_dir / PICTURE).stat().st_size > 10_000
    assert run_label(T0) == "03-01 09:00:00"
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    assert write_findings_picture(empty, tmp_path / "none") is None  # before the first run: no picture
    assert not (tmp_path / "none").exists()
