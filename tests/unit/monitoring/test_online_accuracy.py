"""Online accuracy per version over time: counted from the labelled rows, and plotted as counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from monitoring.online_accuracy import accuracy_over_time, write_accuracy_picture

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def labelled() -> pd.DataFrame:
    """v1 serves minutes 0-59 at 9/10 right; v2 takes over from minute 40 at 1/2 right (written out by hand)."""
    rows = [(T0 + timedelta(minutes=m), "1", m % 10 != 3) for m in range(60)]
    rows += [(T0 + timedelta(minutes=40 + m / 2), "2", m % 2 == 0) for m in range(40)]
    return pd.DataFrame(rows, columns=["ts", "model_version", "correct"])


def test_counts_per_version_and_bucket_are_the_rows() -> None:
    table = accuracy_over_time(labelled(), buckets=4)  # 59.5 minutes / 4: edges 0, 14.875, 29.75, 44.625, 59.5
    v1 = table[table["model_version"] == "1"]
    assert list(v1["labelled"]) == [15, 15, 15, 15]
    assert list(v1["correct"]) == [13, 14, 13, 14]  # wrong at minutes 3, 13 | 23 | 33, 43 | 53
    v2 = table[table["model_version"] == "2"]
    assert list(v2["labelled"]) == [10, 30]  # minutes 40..44.5 | 45..59.5 (the last one capped into bucket 4)
    assert list(v2["correct"]) == [5, 15]
    assert (table["low"] <= table["accuracy"]).all()
    assert (table["accuracy"] <= table["high"]).all()
    assert table["start"].iloc[0] == T0
    assert table["end"].max() == T0 + timedelta(minutes=59.5)


def test_a_bucket_all_right_or_all_wrong_keeps_its_point_inside_its_interval(tmp_path: Path) -> None:
    rows = [(T0 + timedelta(seconds=s), "1", s < 50) for s in range(100)]  # 50 right, then 50 wrong
    table = accuracy_over_time(pd.DataFrame(rows, columns=["ts", "model_version", "correct"]), buckets=2)
    assert list(table["accuracy"]) == [1.0, 0.0]
    assert list(table["high"]) == [1.0, pytest.approx(0.0713, abs=1e-4)]  # Wilson 95 % at 0/50
    assert list(table["low"]) == [pytest.approx(0.9287, abs=1e-4), 0.0]
    drawn = write_accuracy_picture(table, tmp_path / "edges.png")["1"]  # matplotlib refuses negative bar lengths
    assert list(drawn["high"]) == pytest.approx(list(table["high"]))


def test_an_empty_window_is_an_empty_table_and_no_picture(tmp_path: Path) -> None:
    table = accuracy_over_time(labelled().iloc[:0])
    assert table.empty
    with pytest.raises(ValueError, match="mlops-lab traffic"):
        write_accuracy_picture(table, tmp_path / "x.png")


def test_the_picture_plots_the_table(tmp_path: Path) -> None:
    table = accuracy_over_time(labelled(), buckets=4)
    out = tmp_path / "reports" / "check-1" / "online-accuracy.png"
    plotted = write_accuracy_picture(table, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(plotted) == {"1", "2"}
    for version, drawn in plotted.items():
        rows = table[table["model_version"] == version].reset_index(drop=True)
        middles = rows["start"] + (rows["end"] - rows["start"]) / 2
        assert ((drawn["middle"] - middles).abs() < pd.Timedelta(milliseconds=1)).all()
        assert list(drawn["accuracy"]) == pytest.approx(list(rows["accuracy"]))
        assert list(drawn["low"]) == pytest.approx(list(rows["low"]))
        assert list(drawn["high"]) == pytest.approx(list(rows["high"]))
        assert list(drawn["labelled"]) == list(rows["labelled"])
