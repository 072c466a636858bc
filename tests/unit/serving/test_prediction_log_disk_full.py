"""A full disk under the prediction log: reported while it lasts, recovered piece by piece, never lost silently.

The fault is real SQLite behaviour, not a stand-in: ``PRAGMA max_page_count`` on every connection checked
out to the log's file caps the database's size, and SQLite then fails writes with SQLITE_FULL ("database
or disk is full"), the very error a full disk gives. Raising the cap is space freeing up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from serving.prediction_log import PredictionLog, PredictionRecord, make_engine, predictions_table
from tests.sqlite_faults import DiskLimit, full_disk

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "predictions.db"


@pytest.fixture
def disk(db: Path) -> Iterator[DiskLimit]:
    with full_disk(db) as limit:
        yield limit


def rec(i: int) -> PredictionRecord:
    return PredictionRecord(
        request_id=f"req-{i}", model_name="iris", model_version="1", prediction="setosa",
        features={"sepal_length": 5.0 + i / 1000, "sepal_width": 3.1, "petal_length": 1.4, "petal_width": 0.2},
        ts=T0 + timedelta(milliseconds=i),
    )  # fmt: skip


def rows_in(db: Path) -> int:
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        n = conn.scalar(sa.select(sa.func.count()).select_from(predictions_table))
    engine.dispose()
    return int(n or 0)


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll a condition on the log's state until it holds or the deadline passes (not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def pages_for(n: int, tmp_path: Path) -> int:
    """Pages that ``n`` of these rows take, measured in a scratch log of the same schema."""
    scratch = tmp_path / "scratch.db"
    log = PredictionLog(f"sqlite:///{scratch}", batch_size=64, max_delay=0.01).start()
    log.record(rec(-1))
    log.flush()
    before = DiskLimit(scratch).pages_now()
    for i in range(n):
        log.record(rec(i))
    log.close()
    return DiskLimit(scratch).pages_now() - before


N = 2_000


def test_a_full_disk_is_reported_and_the_backlog_lands_exactly_once_as_space_frees(
    db: Path, disk: DiskLimit, tmp_path: Path
) -> None:
    needed = pages_for(N, tmp_path)
    log = PredictionLog(f"sqlite:///{db}", batch_size=64, max_delay=0.02, chunk_rows=100).start()
    try:
        log.record(rec(-1))
        assert log.flush()
        disk.pages = disk.pages_now()  # full: not one more page
        filler = 0  # fill the last page's free bytes until a write fails: then the disk is full for sure
        while log.stats().write_error is None:
            assert log.record(rec(N + filler), timeout=0)
            log.flush(timeout=0.2)
            filler += 1
        for i in range(N):  # the backlog builds up behind the write the writer is retrying
            assert log.record(rec(i), timeout=0)
        stats = log.stats()
        assert "full" in (stats.write_error or "")  # SQLite's own words, without the statement or its rows
        assert stats.written + stats.queued == 1 + filler + N
        assert stats.queued >= N

        # A little space frees: room for about 40 % of the backlog, not for all of it in one transaction.
        disk.pages = disk.pages_now() + int(needed * 0.4)
        assert wait_for(lambda: log.stats().written >= N // 4), f"no progress in chunks: {log.stats()}"
        assert wait_for(lambda: log.stats().write_error is not None)  # the rest still does not fit
        assert log.stats().written < 1 + filler + N

        disk.pages = None  # the disk has room again
        assert wait_for(lambda: log.stats().queued == 0)
        stats = log.stats()
        assert (stats.written, stats.failed, stats.dropped, stats.write_error) == (1 + filler + N, 0, 0, None)
    finally:
        disk.pages = None
        log.close()
    assert rows_in(db) == 1 + filler + N  # every answered row once


def test_shutdown_on_a_full_disk_drops_in_bounded_time_and_says_how_many(
    db: Path, disk: DiskLimit, caplog: pytest.LogCaptureFixture
) -> None:
    log = PredictionLog(f"sqlite:///{db}", batch_size=64, max_delay=0.02, chunk_rows=100).start()
    log.record(rec(-1))
    assert log.flush()
    disk.pages = disk.pages_now()
    for i in range(1_000):
        assert log.record(rec(i), timeout=0)
    assert wait_for(lambda: log.stats().write_error is not None)
    start = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="serving.prediction_log"):
        drained = log.close(timeout=30)
    elapsed = time.monotonic() - start
    stats = log.stats()
    assert not drained  # close() does not claim a drain that dropped rows
    assert stats.dropped > 900  # all but what fitted in the last page's free bytes
    assert (stats.written - 1) + stats.dropped == 1_000
    assert stats.queued == 0
    assert stats.failed == 0  # dropped at shutdown is not "rejected by the database"
    logged = [r.getMessage() for r in caplog.records if " dropped " in r.getMessage()]
    assert sum(int(m.split(" dropped ")[1].split()[0]) for m in logged) == stats.dropped
    assert elapsed < 20, f"shutdown took {elapsed:.1f} s"  # a few retries, then one attempt per chunk
    assert rows_in(db) == stats.written
