"""Retention and erasure on a real SQLite prediction log and a real reports folder in tmp_path (scripted times)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from core.settings import Settings
from monitoring.privacy import (
    AUDIT_FILE,
    REPORT_PREFIX,
    REPORT_STAMP,
    ErasureRefusedError,
    apply_retention,
    audit_entries,
    erase,
    erase_user,
)
from serving.credentials import feedback_key, user_keys
from serving.prediction_log import (
    FeedbackRecord,
    PredictionLog,
    PredictionRecord,
    ServedRows,
    feedback_table,
    make_engine,
    predictions_table,
)
from tests.fresh_database import drop_our_tables

CUTOFF = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
OLD_SECRET = "example-user-key-secret-old-0001"
NEW_SECRET = "example-user-key-secret-new-0002"
ALICE, BOB = "alice.raw-id-91c2@example.invalid", "bob.raw-id-33d0@example.invalid"


def record(rid: str, ts: datetime, user_key: str | None = None) -> PredictionRecord:
    return PredictionRecord(rid, "iris", "1", {"sepal_length": 5.0}, "setosa", ts=ts, user_key=user_key)


def write(url: str, items: list[PredictionRecord | ServedRows], labels: list[FeedbackRecord]) -> None:
    log = PredictionLog(url, batch_size=8, max_delay=0.01).start()
    try:
        for item in items:
            assert log.record(item)
        assert log.flush()
    finally:
        log.close()
    engine = make_engine(url)  # labels at scripted times (the log stamps its own with the clock)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(feedback_table), [vars(label) for label in labels])
    finally:
        engine.dispose()


def request_ids(url: str, table: sa.Table = predictions_table) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(conn.scalars(sa.select(table.c.request_id)))
    finally:
        engine.dispose()


def report(reports_dir: Path, made: datetime) -> Path:
    folder = reports_dir / f"{REPORT_PREFIX}{made.strftime(REPORT_STAMP)}"
    folder.mkdir(parents=True)
    (folder / "data-drift.json").write_text("{}")
    return folder


def on_disk(state: Path) -> bytes:
    return b"".join(p.read_bytes() for p in state.rglob("*") if p.is_file())


def test_retention_deletes_rows_and_reports_before_the_cutoff_and_keeps_those_at_or_after_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    second = timedelta(seconds=1)
    times = {"before": CUTOFF - second, "micro-before": CUTOFF - timedelta(microseconds=1), "at": CUTOFF,
             "after": CUTOFF + second}  # fmt: skip
    labels = [FeedbackRecord(rid, "setosa", ts=ts) for rid, ts in times.items()]
    labels[0] = FeedbackRecord("before", "setosa", ts=CUTOFF + timedelta(days=2))  # a late label of an old row
    write(url, [record(rid, ts) for rid, ts in times.items()], labels)
    reports = tmp_path / "reports"
    for made in (CUTOFF - second, CUTOFF, CUTOFF + second):
        report(reports, made)
    (reports / "ab-test").mkdir()  # not a monitoring report: never touched

    engine = make_engine(url)
    try:
        removed = apply_retention(engine, reports, CUTOFF)
    finally:
        engine.dispose()

    assert request_ids(url) == ["after", "at"]
    assert request_ids(url, feedback_table) == ["after", "at"]  # the late label went with its old prediction
    assert (removed.predictions, removed.feedback) == (2, 2)
    assert removed.reports == [f"{REPORT_PREFIX}{(CUTOFF - second).strftime(REPORT_STAMP)}"]
    assert sorted(p.name for p in reports.iterdir()) == sorted(
        ["ab-test", *(f"{REPORT_PREFIX}{t.strftime(REPORT_STAMP)}" for t in (CUTOFF, CUTOFF + second))]
    )
    assert removed.checkpointed
    assert not (tmp_path / "predictions.db-wal").exists() or (tmp_path / "predictions.db-wal").stat().st_size == 0


def test_retention_on_a_log_that_was_never_written_deletes_only_old_reports(tmp_path: Path) -> None:
    report(tmp_path / "reports", CUTOFF - timedelta(days=1))
    engine = make_engine(f"sqlite:///{tmp_path / 'predictions.db'}")
    try:
        removed = apply_retention(engine, tmp_path / "reports", CUTOFF)
    finally:
        engine.dispose()
    assert (removed.predictions, removed.feedback, len(removed.reports)) == (0, 0, 1)


def test_on_either_database_retention_and_erasure_delete_the_rows_and_reclaim_their_storage(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
    engine = make_engine(database_url)
    drop_our_tables(engine)  # PostgreSQL outlives a test
    keys = user_keys(NEW_SECRET, [], feedback_key(None, None))
    try:
        items = [record("old", CUTOFF - timedelta(days=1), keys.key(BOB)), record("a-1", CUTOFF, keys.key(ALICE)),
                 record("b-1", CUTOFF, keys.key(BOB))]  # fmt: skip
        write(database_url, items, [FeedbackRecord(rid, "setosa", ts=CUTOFF) for rid in ("a-1", "b-1")])
        retained = apply_retention(engine, tmp_path / "reports", CUTOFF)
        erased = erase_user(settings, engine, keys.candidates(ALICE))
        assert (retained.predictions, erased.predictions, erased.feedback) == (1, 1, 1)
        assert request_ids(database_url) == request_ids(database_url, feedback_table) == ["b-1"]
        assert retained.checkpointed
        assert erased.checkpointed
        if engine.dialect.name == "postgresql":  # both tables were vacuumed now, not at the next autovacuum
            with engine.connect() as conn:
                vacuumed = conn.execute(
                    sa.text("SELECT relname FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL "
                            "AND relname IN ('predictions', 'feedback') ORDER BY relname")
                ).scalars().all()  # fmt: skip
            assert vacuumed == ["feedback", "predictions"]
    finally:
        engine.dispose()


@pytest.fixture
def rotated(settings: Settings) -> Settings:
    """A log where Alice wrote before and after a key rotation, Bob after; reports before and after Alice."""
    old = user_keys(OLD_SECRET, [], feedback_key(None, None))
    new = user_keys(NEW_SECRET, [OLD_SECRET], feedback_key(None, None))
    t0 = CUTOFF
    batch = ServedRows(["a-batch:0", "a-batch:1"], "iris", "1", ["sepal_length"], np.array([[5.0], [6.0]]),
                       ["setosa", "virginica"], None, ["setosa", "virginica"], "champion", "ab", 1.0,
                       ts=t0 + timedelta(hours=2), user_key=new.key(ALICE))  # fmt: skip
    items = [
        record("b-early", t0 - timedelta(hours=1), new.key(BOB)),
        record("a-old", t0, old.key(ALICE)),  # before the rotation: the old key
        record("a-old:shadow", t0, None),  # the shadow's mirror row of Alice's request
        batch,
        record("b-late", t0 + timedelta(hours=3), new.key(BOB)),
        record("anonymous", t0 + timedelta(hours=3)),
    ]
    labels = [FeedbackRecord(rid, "setosa", ts=t0 + timedelta(hours=4)) for rid in ("a-old", "a-batch:1", "b-late")]
    write(settings.prediction_log_uri, items, labels)
    report(settings.reports_dir, t0 - timedelta(minutes=30))  # made before Alice's first row: cannot hold her
    report(settings.reports_dir, t0 + timedelta(hours=1))
    return settings.model_copy(update={"user_key_secret": NEW_SECRET, "user_key_previous": [OLD_SECRET]})


def test_erasure_finds_a_user_across_a_key_rotation_and_leaves_nothing_of_them_on_disk(rotated: Settings) -> None:
    old_key = user_keys(OLD_SECRET, [], feedback_key(None, None)).key(ALICE)
    new_key = user_keys(NEW_SECRET, [], feedback_key(None, None)).key(ALICE)
    assert old_key != new_key  # rotation: new rows are not linkable to old ones without the raw id
    url = rotated.prediction_log_uri
    assert b"a-batch" in on_disk(rotated.state)

    # The service keeps its connections open: the erasure's own closing is then not the last one, and only its
    # checkpoint moves the deletion from the WAL into the database file (where Alice's old pages still are).
    serving_connection = sqlite3.connect(rotated.state / "predictions.db")
    try:
        assert serving_connection.execute("SELECT count(*) FROM predictions").fetchone() == (7,)
        removed = erase(rotated, ALICE, now=CUTOFF + timedelta(days=1))
        disk = on_disk(rotated.state)  # the database file, its WAL, the reports, the audit log: service still up
    finally:
        serving_connection.close()

    assert request_ids(url) == ["anonymous", "b-early", "b-late"]  # Bob and the anonymous row are untouched
    assert request_ids(url, feedback_table) == ["b-late"]
    assert (removed.predictions, removed.feedback) == (4, 2)  # a-old, its shadow row, the batch's two rows
    assert removed.reports == [f"{REPORT_PREFIX}{(CUTOFF + timedelta(hours=1)).strftime(REPORT_STAMP)}"]
    assert [p.name for p in rotated.reports_dir.iterdir()] == [
        f"{REPORT_PREFIX}{(CUTOFF - timedelta(minutes=30)).strftime(REPORT_STAMP)}"
    ]
    for trace in (old_key, new_key, "a-old", "a-batch", ALICE):
        assert trace is not None
        assert trace.encode() not in disk, trace
    assert b"b-late" in disk  # the search does read the database file
    [entry] = audit_entries(rotated.state)
    assert entry == {"ts": "2026-03-02T00:00:00+00:00", "actor": rotated.actor, "action": "erasure",
                     "predictions": 4, "feedback": 2, "reports": 1, "mlflow_reports": 0,
                     "checkpointed": True}  # fmt: skip
    assert (rotated.state / AUDIT_FILE).exists()


def test_erasure_without_the_previous_secret_misses_the_rows_written_before_the_rotation(rotated: Settings) -> None:
    forgot = rotated.model_copy(update={"user_key_previous": []})
    removed = erase(forgot, ALICE)
    assert removed.predictions == 2  # the batch under the new key only
    assert "a-old" in request_ids(rotated.prediction_log_uri)


def test_erasure_is_refused_without_a_key_secret_and_for_an_empty_id(settings: Settings) -> None:
    with pytest.raises(ErasureRefusedError, match="no key secret"):
        erase(settings, ALICE)
    keyed = settings.model_copy(update={"user_key_secret": NEW_SECRET})
    with pytest.raises(ErasureRefusedError, match="empty"):
        erase(keyed, "  ")
    assert audit_entries(settings.state) == []
