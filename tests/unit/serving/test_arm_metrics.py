"""What the canary analysis reads of one arm: its window of the prediction log and a fixed label sample.

A real SQLite prediction log in tmp_path, rows written with chosen prediction and feedback times, so
the window bounds and the label order are exact without any clock.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from serving.log_schema import feedback_table, make_engine, metadata, predictions_table
from serving.rollout_controller import arm_metrics

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
_ids = itertools.count()


def _engine(tmp_path: Path) -> sa.Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'predictions.db'}")
    metadata.create_all(engine)
    return engine


def _serve(engine: sa.Engine, n: int, at: datetime, labelled_at: datetime | None, *, right: bool) -> None:
    """n challenger predictions of "setosa" logged at `at`; labels (right or wrong) arriving at `labelled_at`."""
    rows = [f"m{next(_ids)}" for _ in range(n)]
    with engine.begin() as conn:
        conn.execute(
            sa.insert(predictions_table),
            [
                {
                    "request_id": rid,
                    "ts": at,
                    "model_name": "iris-classifier",
                    "model_version": "2",
                    "arm": "challenger",
                    "strategy": "canary",
                    "features": {"sepal_length": 5.0},
                    "prediction": "setosa",
                    "latency_ms": 2.0,
                    "status": "ok",
                }
                for rid in rows
            ],
        )
        if labelled_at is not None:
            label = "setosa" if right else "virginica"
            conn.execute(
                sa.insert(feedback_table), [{"request_id": rid, "ts": labelled_at, "label": label} for rid in rows]
            )


def test_the_label_sample_is_the_first_labels_to_arrive_so_later_labels_never_change_it(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _serve(
        engine, 5, T0 + timedelta(minutes=1), T0 + timedelta(minutes=30), right=False
    )  # predicted first, labelled late
    _serve(engine, 5, T0 + timedelta(minutes=2), T0 + timedelta(minutes=3), right=True)
    first = arm_metrics(engine, "challenger", "2", T0, first_labels=5)
    assert (first.requests, first.labelled, first.correct) == (10, 5, 5)  # by arrival, not by prediction time
    _serve(engine, 5, T0 + timedelta(minutes=4), T0 + timedelta(minutes=40), right=False)  # more labels later
    assert arm_metrics(engine, "challenger", "2", T0, first_labels=5).correct == 5  # the same sample
    everything = arm_metrics(engine, "challenger", "2", T0)
    assert (everything.labelled, everything.correct) == (15, 5)
    engine.dispose()


def test_a_window_counts_rows_logged_from_since_up_to_but_not_including_until(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    for minute in (0, 10, 20):
        _serve(engine, 2, T0 + timedelta(minutes=minute), None, right=True)
    window = arm_metrics(engine, "challenger", "2", T0 + timedelta(minutes=10), T0 + timedelta(minutes=20))
    assert window.requests == 2  # minute 10 only: minute 0 is before, minute 20 is the next window's
    assert arm_metrics(engine, "challenger", "2", T0 + timedelta(minutes=10)).requests == 4
    engine.dispose()
