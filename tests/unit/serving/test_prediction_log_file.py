"""A SQLite prediction log whose database file is replaced or deleted under it (a restore while serving).

An open SQLite connection follows the file it opened, not the name: without the check the writer
goes on committing to the unlinked file and every row after the swap is lost without a word.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ops.backup import snapshot_sqlite
from serving.prediction_log import PredictionLog, PredictionRecord

SIDECARS = ("", "-wal", "-shm")


def rec(i: int) -> PredictionRecord:
    return PredictionRecord(
        request_id=f"req-{i}",
        model_name="iris",
        model_version="1",
        features={"x": float(i)},
        prediction="setosa",
        ts=datetime(2026, 1, 1, tzinfo=UTC),
    )


def stored(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return [row[0] for row in conn.execute("SELECT request_id FROM predictions ORDER BY request_id")]


def move_away(db: Path, parked: Path) -> None:
    """What a restore does to the live files: the database and its WAL files moved out of the way."""
    parked.mkdir()
    for suffix in SIDECARS:
        if Path(f"{db}{suffix}").exists():
            shutil.move(f"{db}{suffix}", parked / f"db{suffix}")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "predictions.db"


@pytest.fixture
def plog(db: Path) -> Iterator[PredictionLog]:
    log = PredictionLog(f"sqlite:///{db}", batch_size=8, max_delay=0.05).start()
    yield log
    log.close(timeout=10)


def test_rows_after_the_file_was_replaced_go_to_the_new_file(plog: PredictionLog, db: Path, tmp_path: Path) -> None:
    for i in range(3):
        assert plog.record(rec(i))
    assert plog.flush()
    backup = tmp_path / "backup.db"
    snapshot_sqlite(db, backup)  # the backup holds req-0..2
    assert plog.record(rec(3))  # after the backup: a restore loses it, by design
    assert plog.flush()

    move_away(db, tmp_path / "parked")
    shutil.move(backup, db)  # the restored database, a new file under the old name
    for i in (4, 5):
        assert plog.record(rec(i))
    assert plog.flush()

    assert stored(db) == ["req-0", "req-1", "req-2", "req-4", "req-5"]
    assert "was replaced under the service" in (plog.file_problem or "")
    assert plog.stats().failed == 0


def test_no_row_is_written_while_the_file_is_gone_and_all_land_once_it_is_back(
    plog: PredictionLog, db: Path, tmp_path: Path
) -> None:
    assert plog.record(rec(0))
    assert plog.flush()
    backup = tmp_path / "backup.db"
    snapshot_sqlite(db, backup)
    move_away(db, tmp_path / "parked")  # deleted, as `reset` or a half-done restore leaves it

    assert plog.record(rec(1))
    assert not plog.flush(timeout=0.5)  # nothing committed to the unlinked file: the row stays queued
    assert plog.stats().queued == 1
    assert "was deleted under the service" in (plog.file_problem or "")
    assert not db.exists()  # no new empty database was made behind the operator's back

    shutil.move(backup, db)
    assert plog.flush(timeout=15)
    assert stored(db) == ["req-0", "req-1"]
    assert "was replaced" in (plog.file_problem or "")
