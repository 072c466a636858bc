"""Prediction log and its readers on a real SQLite file (WAL) in tmp_path: fast and deterministic."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from serving.log_insert import COLUMNS
from serving.log_reader import accuracy_by_version, labelled_window, recent_predictions
from serving.prediction_log import (
    DriverInsert,
    FeedbackStatus,
    PredictionLog,
    PredictionLogError,
    PredictionRecord,
    ServedRows,
    feedback_table,
    insert_ignoring_duplicates,
    make_engine,
    metadata,
    predictions_table,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def rec(i: int, *, version: str = "1", prediction: str = "setosa", **kw: object) -> PredictionRecord:
    fields: dict[str, object] = {
        "request_id": f"req-{i}",
        "model_name": "iris",
        "model_version": version,
        "features": {"sepal_length": 5.0 + i / 10, "petal_width": 0.2},
        "prediction": prediction,
        "ts": T0 + timedelta(minutes=i),
    }
    return PredictionRecord(**(fields | kw))  # type: ignore[arg-type]


def count(url: str, table: sa.Table) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.scalar(sa.select(sa.func.count()).select_from(table))
    engine.dispose()
    return int(n or 0)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'predictions.db'}"


@pytest.fixture
def plog(url: str) -> Iterator[PredictionLog]:
    log = PredictionLog(url, batch_size=8, max_delay=0.05).start()
    yield log
    log.close()


def test_record_round_trips_every_field(plog: PredictionLog, url: str) -> None:
    full = rec(
        1,
        probabilities={"setosa": 0.9, "versicolor": 0.08, "virginica": 0.02},
        arm="challenger",
        strategy="canary",
        latency_ms=1.25,
        status="ok",
    )
    failed = rec(2, prediction=None, status="error")  # type: ignore[arg-type]
    assert plog.record(full)
    assert plog.record(failed)
    assert plog.flush()
    with plog.engine.connect() as conn:
        rows = {r.request_id: r for r in conn.execute(sa.select(predictions_table))}
    got = rows["req-1"]._asdict()
    assert got.pop("ts").replace(tzinfo=UTC) == full.ts  # SQLite stores UTC without an offset
    assert got == {k: v for k, v in vars(full).items() if k != "ts"}
    assert rows["req-2"].prediction is None
    assert rows["req-2"].status == "error"

    frame = recent_predictions(url)
    assert frame.loc[0, "ts"] == full.ts
    assert frame.loc[0, "probabilities"] == full.probabilities
    assert frame.loc[0, "sepal_length"] == pytest.approx(5.1)
    assert frame.loc[0, "latency_ms"] == 1.25


def test_numpy_features_are_stored_as_plain_numbers(plog: PredictionLog) -> None:
    plog.record(rec(1, features={"x": np.float32(1.5), "v": np.array([1, 2])}))
    assert plog.flush()
    with plog.engine.connect() as conn:
        assert conn.scalar(sa.select(predictions_table.c.features)) == {"x": 1.5, "v": [1, 2]}


def test_same_request_id_is_written_exactly_once(plog: PredictionLog, url: str) -> None:
    plog.record(rec(1))
    plog.record(rec(1))  # a retry inside one batch
    assert plog.flush()
    plog.record(rec(1, prediction="virginica"))  # a retry in a later batch does not overwrite
    plog.close()
    assert count(url, predictions_table) == 1
    assert recent_predictions(url)["prediction"].tolist() == ["setosa"]


def test_a_record_the_database_rejects_does_not_cost_its_batch(plog: PredictionLog, url: str) -> None:
    for i, features in enumerate([{"x": 1.0}, {"x": object()}, {"x": 3.0}]):
        plog.record(rec(i, features=features))
    plog.close()
    assert sorted(recent_predictions(url)["request_id"]) == ["req-0", "req-2"]
    assert plog.stats().failed == 1


def test_feedback_recorded_duplicate_conflict_unknown(plog: PredictionLog, url: str) -> None:
    plog.record(rec(1))
    assert plog.flush()
    first = plog.record_feedback("req-1", "setosa")
    again = plog.record_feedback("req-1", "setosa")
    other = plog.record_feedback("req-1", "virginica")
    unknown = plog.record_feedback("req-404", "setosa")
    assert [first.status, again.status, other.status, unknown.status] == [
        FeedbackStatus.RECORDED,
        FeedbackStatus.DUPLICATE,
        FeedbackStatus.CONFLICT,
        FeedbackStatus.UNKNOWN_REQUEST,
    ]
    assert other.existing_label == "setosa"
    assert "not stored" in other.message
    assert "unknown request id 'req-404'" in unknown.message
    assert labelled_window(url)["label"].tolist() == ["setosa"]  # the conflict did not overwrite
    assert count(url, feedback_table) == 1


def test_a_flood_of_unknown_ids_waits_in_bounded_numbers_and_real_feedback_goes_through(url: str) -> None:
    import threading

    from serving.log_schema import FeedbackBusyError
    from serving.native_api import serving_error

    log = PredictionLog(url, batch_size=8, max_delay=2.0, max_waiting_feedback=1).start()  # a wait lasts 4.5 s
    log.record(rec(1))
    assert log.flush()
    results: list[object] = []
    waiter = threading.Thread(target=lambda: results.append(log.record_feedback("never-1", "setosa").status))
    waiter.start()
    entered = threading.Event()
    while not entered.wait(0.01):  # until the first unknown id holds the only waiting slot (bounded below)
        if log.feedback_waiting == 1 or not waiter.is_alive():
            entered.set()
    assert log.feedback_waiting == 1
    with pytest.raises(FeedbackBusyError, match="retry") as busy:
        log.record_feedback("never-2", "setosa")  # refused at once instead of tying up another thread
    answer = serving_error(busy.value)  # what /v1/feedback answers
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "1")
    assert log.record_feedback("req-1", "setosa").status is FeedbackStatus.RECORDED  # stored ids never wait
    waiter.join(timeout=30)
    assert results == [FeedbackStatus.UNKNOWN_REQUEST]
    assert log.feedback_waiting == 0
    assert log.close()


def test_feedback_for_a_prediction_still_in_memory_is_not_unknown(url: str) -> None:
    log = PredictionLog(url, batch_size=1000, max_delay=60.0).start()  # nothing written by itself
    log.record(rec(1))
    assert log.stats().written == 0
    assert log.record_feedback("req-1", "setosa").status is FeedbackStatus.RECORDED
    assert log.close()


def test_writer_batches_by_size_and_keeps_the_rest_in_memory(url: str) -> None:
    log = PredictionLog(url, batch_size=5, max_delay=60.0).start()  # time alone would not write for a minute
    for i in range(5):
        log.record(rec(i))  # the fifth makes a full batch: written without waiting max_delay
    deadline = time.monotonic() + 5
    while log.stats().written < 5 and time.monotonic() < deadline:
        time.sleep(0.005)  # polling a condition, bounded
    assert log.stats().written == 5
    for i in range(5, 8):
        log.record(rec(i))
    assert (log.stats().written, log.stats().queued) == (5, 3)  # below a batch: in memory until due or flushed
    assert log.flush()
    assert (log.stats().written, log.stats().queued) == (8, 0)
    log.close()


def test_a_full_log_refuses_and_counts_instead_of_losing_accepted_rows(url: str) -> None:
    log = PredictionLog(url, max_pending_rows=2, enqueue_timeout=0.0)  # not started: nothing drains
    started = time.monotonic()
    accepted = [log.record(rec(i)) for i in range(3)]
    assert time.monotonic() - started < 1.0
    assert accepted == [True, True, False]
    assert log.stats().refused == 1
    assert log.stats().queued == 2
    log.start()
    assert log.close()
    assert count(url, predictions_table) == 2  # every accepted row, and only those


def test_a_waiting_record_gets_room_once_the_writer_commits(url: str) -> None:
    log = PredictionLog(url, max_pending_rows=2, batch_size=1, enqueue_timeout=0.0)
    assert log.record(rec(0))
    assert log.record(rec(1))
    assert not log.record(rec(2), timeout=0)  # full, and nothing drains yet
    waiter_result: list[bool] = []
    waiter = threading.Thread(target=lambda: waiter_result.append(log.record(rec(2), timeout=30)))
    waiter.start()
    log.start()  # the writer commits the two pending rows, which frees room for the waiting one
    waiter.join(timeout=30)
    assert waiter_result == [True]
    assert log.close()
    assert count(url, predictions_table) == 3
    assert log.stats().refused == 1


def test_an_item_larger_than_the_capacity_is_accepted_when_the_log_is_empty(url: str) -> None:
    log = PredictionLog(url, max_pending_rows=10, enqueue_timeout=0.0).start()
    assert log.record(served_rows("big", 25))
    assert not log.record(rec(1))  # nothing fits beside it until it is written
    assert log.flush()
    assert log.record(rec(1))
    assert log.close()
    assert count(url, predictions_table) == 26


def served_rows(request_id: str, n: int, **kw: object) -> ServedRows:
    values = np.arange(n * 2, dtype="float64").reshape(n, 2)
    values[0, 1] = np.nan
    proba = np.tile([0.25, 0.75], (n, 1))
    fields: dict[str, object] = {
        "request_ids": [f"{request_id}:{i}" for i in range(n)],
        "model_name": "iris",
        "model_version": "3",
        "feature_names": ["a", "b"],
        "values": values,
        "predictions": ["y"] * n,
        "probabilities": proba,
        "classes": ["x", "y"],
        "arm": "challenger",
        "strategy": "canary",
        "latency_ms": 1.5,
        "ts": T0,
    }
    return ServedRows(**(fields | kw))  # type: ignore[arg-type]


def test_served_rows_are_expanded_into_one_table_row_each(plog: PredictionLog, url: str) -> None:
    assert plog.record(served_rows("r", 3))
    assert plog.record(served_rows("e", 2, predictions=None, probabilities=None, status="error"))
    assert plog.flush()
    with plog.engine.connect() as conn:
        stored = {r.request_id: r for r in conn.execute(sa.select(predictions_table))}
    assert sorted(stored) == ["e:0", "e:1", "r:0", "r:1", "r:2"]
    assert stored["r:0"].features == {"a": 0.0, "b": None}  # NaN is stored as null
    assert stored["r:2"].features == {"a": 4.0, "b": 5.0}
    assert stored["r:1"].probabilities == {"x": 0.25, "y": 0.75}
    assert (stored["r:1"].prediction, stored["r:1"].arm, stored["r:1"].strategy) == ("y", "challenger", "canary")
    assert stored["r:1"].model_version == "3"
    assert stored["r:1"].latency_ms == 1.5
    assert stored["e:1"].status == "error"
    assert stored["e:1"].prediction is None
    assert stored["e:1"].probabilities is None
    assert plog.stats().written == 5
    assert plog.stats().queued == 0


def test_driver_insert_stores_exactly_what_sqlalchemy_would(tmp_path: Path) -> None:
    """The writer's SQLite path (tuples, multi-row statements) against SQLAlchemy's own execute: same bytes."""
    items = [served_rows("r", 150), served_rows("e", 2, predictions=None, probabilities=None, status="error"), rec(7)]
    stored = []
    for name in ("core", "driver"):
        engine = make_engine(f"sqlite:///{tmp_path / name / 'p.db'}")
        metadata.create_all(engine)
        driver = DriverInsert.for_engine(engine)
        assert driver is not None
        with engine.begin() as conn:
            if name == "driver":
                rows = driver.rows(items, reject=pytest.fail)
                assert [len(params) // len(COLUMNS) for _, params in driver.statements(rows)] == [64, 64, 25]
                for sql, params in driver.statements(rows):
                    conn.exec_driver_sql(sql, params)
            else:
                conn.execute(
                    insert_ignoring_duplicates(engine, predictions_table), [r for i in items for r in i.rows()]
                )
        with engine.connect() as conn:  # raw text as stored, not SQLAlchemy's parsed values
            stored.append(conn.exec_driver_sql("SELECT * FROM predictions ORDER BY request_id").fetchall())
        engine.dispose()
    assert stored[0] == stored[1]
    assert len(stored[1]) == 153


def test_driver_insert_isolates_a_row_json_refuses(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    driver = DriverInsert.for_engine(engine)
    assert driver is not None
    rejected: list[str] = []
    rows = driver.rows([rec(1), rec(2, features={"x": object()}), rec(3)], reject=rejected.append)
    assert [row[0] for row in rows] == ["req-1", "req-3"]
    assert rejected == ["req-2"]
    engine.dispose()


def test_close_is_idempotent_and_record_after_close_raises(plog: PredictionLog, url: str) -> None:
    plog.record(rec(1))
    assert plog.close()
    assert plog.close()
    assert count(url, predictions_table) == 1
    with pytest.raises(PredictionLogError, match="closed"):
        plog.record(rec(2))


@pytest.mark.parametrize("bad", ["sqlite://", "sqlite:///:memory:", "mysql://u@h/db"])
def test_engine_rejects_unsupported_urls(bad: str) -> None:
    with pytest.raises(PredictionLogError, match="use"):
        make_engine(bad)


def test_sqlite_runs_in_wal_mode(plog: PredictionLog) -> None:
    with plog.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000


# ---- readers -------------------------------------------------------------------------------------


@pytest.fixture
def seeded(plog: PredictionLog, url: str) -> str:
    """10 predictions a minute apart, versions 1 (even i) and 2 (odd i); labels for i < 6."""
    for i in range(10):
        plog.record(rec(i, version=str(1 + i % 2), prediction="setosa" if i % 3 else "virginica"))
    assert plog.flush()
    for i in range(6):
        assert plog.record_feedback(f"req-{i}", "setosa").status is FeedbackStatus.RECORDED
    return url


def ids(frame: object) -> list[str]:
    return list(frame["request_id"])  # type: ignore[index]


def test_recent_predictions_windows_by_count_time_and_version(seeded: str) -> None:
    assert ids(recent_predictions(seeded)) == [f"req-{i}" for i in range(10)]
    assert ids(recent_predictions(seeded, last_n=3)) == ["req-7", "req-8", "req-9"]
    assert ids(recent_predictions(seeded, since=T0 + timedelta(minutes=8))) == ["req-8", "req-9"]
    naive = (T0 + timedelta(minutes=8)).replace(tzinfo=None)
    assert ids(recent_predictions(seeded, since=naive)) == ["req-8", "req-9"]
    assert ids(recent_predictions(seeded, model_version="2", last_n=2)) == ["req-7", "req-9"]
    assert recent_predictions(seeded, model_name="other").empty


def test_recent_predictions_expands_features_into_columns(seeded: str) -> None:
    frame = recent_predictions(seeded, last_n=1)
    assert "features" not in frame
    assert frame.loc[0, "sepal_length"] == pytest.approx(5.9)
    assert frame.loc[0, "petal_width"] == 0.2


def test_labelled_window_joins_feedback_with_a_correct_flag(seeded: str) -> None:
    frame = labelled_window(seeded)
    assert ids(frame) == [f"req-{i}" for i in range(6)]
    assert frame["correct"].tolist() == [i % 3 != 0 for i in range(6)]
    assert ids(labelled_window(seeded, last_n=2)) == ["req-4", "req-5"]  # counts labelled rows only
    assert ids(labelled_window(seeded, model_version="1")) == ["req-0", "req-2", "req-4"]
    assert frame["label_ts"].dt.tz is not None


def test_accuracy_by_version(seeded: str) -> None:
    acc = accuracy_by_version(seeded).set_index("model_version")
    # version 1: req-0 (wrong), req-2, req-4; version 2: req-1, req-3 (wrong), req-5
    assert acc.loc["1", "n_labelled"] == 3
    assert acc.loc["1", "n_correct"] == 2
    assert acc.loc["2", "accuracy"] == pytest.approx(2 / 3)
    later = accuracy_by_version(seeded, since=T0 + timedelta(minutes=4))
    assert later["n_labelled"].sum() == 2


def test_readers_on_a_log_that_has_no_tables_yet(url: str) -> None:
    assert recent_predictions(url).empty
    assert labelled_window(url).empty
    assert list(accuracy_by_version(url).columns) == [
        "model_name",
        "model_version",
        "n_labelled",
        "n_correct",
        "accuracy",
    ]


@pytest.mark.parametrize("steered", ["forced", "pinned"])
def test_steered_rows_are_in_no_window(seeded: str, plog: PredictionLog, steered: str) -> None:
    """Forced (X-Force-Arm) and version-pinned rows chose their model: no drift, A/B or accuracy window counts them."""
    for i in range(10, 14):  # the newest rows, all labelled wrong: they would move every window if counted
        plog.record(rec(i, version="2", prediction="virginica", strategy=steered, arm="challenger"))
    assert plog.flush()
    for i in range(10, 14):
        assert plog.record_feedback(f"req-{i}", "setosa").status is FeedbackStatus.RECORDED
    assert ids(recent_predictions(seeded, last_n=3)) == ["req-7", "req-8", "req-9"]
    assert ids(labelled_window(seeded, last_n=2)) == ["req-4", "req-5"]
    assert accuracy_by_version(seeded).set_index("model_version").loc["2", "n_labelled"] == 3
    assert ids(recent_predictions(seeded, last_n=2, steered=True)) == ["req-12", "req-13"]  # still readable
    assert ids(labelled_window(seeded, last_n=1, steered=True)) == ["req-13"]


OLD_SCHEMA = """CREATE TABLE predictions (
    request_id VARCHAR(64) NOT NULL PRIMARY KEY, ts DATETIME NOT NULL, model_name VARCHAR(200) NOT NULL,
    model_version VARCHAR(64) NOT NULL, arm VARCHAR(64), strategy VARCHAR(64), features JSON NOT NULL,
    prediction VARCHAR(200), probabilities JSON, latency_ms FLOAT, status VARCHAR(32) NOT NULL);
CREATE TABLE feedback (
    request_id VARCHAR(64) NOT NULL PRIMARY KEY REFERENCES predictions (request_id), ts DATETIME NOT NULL,
    label VARCHAR(200) NOT NULL);
INSERT INTO predictions VALUES ('old-1', '2026-01-01 11:00:00.000000', 'iris', '1', 'champion', 'ab',
    '{"sepal_length": 5.0}', 'setosa', NULL, 1.0, 'ok');
INSERT INTO feedback VALUES ('old-1', '2026-01-01 11:30:00.000000', 'setosa');"""


def test_a_log_created_by_the_previous_schema_is_read_and_then_extended_with_the_user_key(
    url: str, tmp_path: Path
) -> None:
    import sqlite3

    path = tmp_path / "state" / "predictions.db"
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
    # read before any writer opened it: the missing column reads as NULL
    assert labelled_window(url)["user_key"].tolist() == [None]
    log = PredictionLog(url, batch_size=8, max_delay=0.05).start()
    try:
        assert log.record(rec(1, user_key="k" * 32))
        assert log.flush()
    finally:
        log.close()
    frame = recent_predictions(url)
    assert frame[["request_id", "user_key"]].values.tolist() == [["old-1", None], ["req-1", "k" * 32]]
    assert labelled_window(url)["correct"].tolist() == [True]  # the old row and its label still join
    with sqlite3.connect(path) as conn:  # adopted by the migrations: stamped at head, the state tables made
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0004",)]
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'routing_state'").fetchone() == (1,)
    log = PredictionLog(url).start()  # a second start finds the database at head and changes nothing
    log.close()


def test_the_user_key_is_a_keyed_hash_and_the_raw_user_id_never_reaches_the_file(url: str, tmp_path: Path) -> None:
    from serving.credentials import FeedbackKey, UserKeys

    keys = UserKeys(FeedbackKey(b"example-feedback-key-for-tests!!", "MLOPS_FEEDBACK_KEY"))
    other = UserKeys(FeedbackKey(b"another-example-key-for-tests!!!", "MLOPS_FEEDBACK_KEY"))
    raw = "alice.raw-user-id-7f3a@example.invalid"
    key = keys.key(raw)
    assert key is not None
    assert len(key) == 32
    assert key == keys.key(raw) != keys.key("bob")
    assert key != other.key(raw)
    assert keys.key(None) is None
    assert keys.key("") is None
    log = PredictionLog(url, batch_size=8, max_delay=0.05).start()
    try:
        values = np.array([[5.0, 0.2], [6.0, 1.5]])
        served = ServedRows(["req-a:0", "req-a:1"], "iris", "1", ["sepal_length", "petal_width"], values,
                            ["setosa", "virginica"], None, ["setosa", "virginica"], "champion", "ab", 1.0,
                            user_key=key)  # fmt: skip
        assert log.record(served)
        assert log.record(rec(2))  # no X-User-Id: no key
        assert log.flush()
    finally:
        log.close()
    assert recent_predictions(url)["user_key"].tolist() == [None, key, key]  # rec(2) is older
    on_disk = b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir() if p.is_file())
    assert key.encode() in on_disk
    assert raw.encode() not in on_disk
