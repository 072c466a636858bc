"""Exactly-once prediction logging under concurrency and through a SIGTERM.

Runs on SQLite (WAL) by default. To run the same tests on PostgreSQL, install a driver
(``psycopg[binary]``) and set ``MLOPS_TEST_POSTGRES_URL=postgresql+psycopg://user:pw@host/db``;
the tables in that database are dropped and recreated by each test.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from serving.prediction_log import (
    FeedbackResult,
    FeedbackStatus,
    PredictionLog,
    PredictionRecord,
    feedback_table,
    make_engine,
    predictions_table,
)
from tests.fresh_database import drop_our_tables

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def log_url(database_url: str) -> str:
    if database_url.startswith("postgresql"):
        engine = make_engine(database_url)
        drop_our_tables(engine)
        engine.dispose()
    return database_url


def rec(i: int) -> PredictionRecord:
    return PredictionRecord(
        request_id=f"req-{i:05d}",
        model_name="iris",
        model_version=str(1 + i % 2),
        features={"x": float(i)},
        prediction="setosa",
        latency_ms=0.5,
    )


def stored(url: str) -> tuple[Counter[str], dict[str, str]]:
    """Prediction request ids with their multiplicity, and the stored feedback labels."""
    engine = make_engine(url)
    with engine.connect() as conn:
        ids = Counter(conn.scalars(sa.select(predictions_table.c.request_id)))
        labels = {r.request_id: r.label for r in conn.execute(sa.select(feedback_table))}
    engine.dispose()
    return ids, labels


def test_concurrent_writers_and_feedback_are_logged_exactly_once(log_url: str) -> None:
    n, writers = 2000, 8
    log = PredictionLog(log_url, batch_size=64, max_delay=0.02).start()
    to_label: queue.Queue[tuple[str, str] | None] = queue.Queue()
    results: dict[str, list[FeedbackResult]] = defaultdict(list)

    def write(worker: int) -> None:
        mine = range(worker, n, writers)
        for i in mine:
            assert log.record(rec(i))
            if i % 10 == 0:  # every 10th request gets the same label twice; every 50th also a different one
                to_label.put((f"req-{i:05d}", "setosa"))
                to_label.put((f"req-{i:05d}", "setosa"))
                if i % 50 == 0:
                    to_label.put((f"req-{i:05d}", "virginica"))
        for i in list(mine)[:5]:  # client retries: the same request ids again
            assert log.record(rec(i))

    def label() -> None:
        while (item := to_label.get()) is not None:
            result = log.record_feedback(*item)
            results[result.request_id].append(result)  # list.append is atomic

    with ThreadPoolExecutor(writers + 3) as pool:
        labellers = [pool.submit(label) for _ in range(3)]
        for f in [pool.submit(write, w) for w in range(writers)]:
            f.result(timeout=60)
        for _ in labellers:
            to_label.put(None)
        for f in labellers:
            f.result(timeout=60)
    assert log.close()

    ids, labels = stored(log_url)
    assert len(ids) == n
    assert set(ids.values()) == {1}
    assert log.stats().refused == 0
    assert log.stats().failed == 0
    assert len(labels) == len(results) == n // 10
    for request_id, outcomes in results.items():
        recorded = [r for r in outcomes if r.status is FeedbackStatus.RECORDED]
        assert len(recorded) == 1, outcomes  # one winner per request id, whatever the interleaving
        assert labels[request_id] == recorded[0].label
        for r in outcomes:
            expected = FeedbackStatus.DUPLICATE if r.label == recorded[0].label else FeedbackStatus.CONFLICT
            assert r is recorded[0] or r.status is expected


CHILD = r"""
import signal, sys, threading
from serving.prediction_log import PredictionLog, PredictionRecord

url, n = sys.argv[1], int(sys.argv[2])
log = PredictionLog(url, batch_size=64, max_delay=60.0).start()  # only a flush or close writes a partial batch
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0 if log.close(timeout=15) else 3))

def rec(i):
    return PredictionRecord(f"req-{i:05d}", "iris", "1", {"x": float(i)}, "setosa")

def record_all(ids):
    threads = [threading.Thread(target=lambda k=k: [log.record(rec(i)) for i in ids[k::4]]) for k in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()

record_all(list(range(n // 2)))
labelled = [log.record_feedback(f"req-{i:05d}", "setosa").status for i in range(0, n // 2, 25)]
record_all(list(range(n // 2, n - 20)) + list(range(10)))  # most of the second half, plus 10 retried ids
log.flush()  # the writer is idle now, so the last 20 records (under one batch) stay in memory until SIGTERM
record_all(list(range(n - 20, n)))
s = log.stats()
print("READY", s.enqueued, s.written, len(labelled), flush=True)
signal.pause()
"""


def test_sigterm_drains_the_in_memory_batch_exactly_once(log_url: str) -> None:
    n = 1000
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, log_url, str(n)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, proc.kill)  # bounds the test if the child hangs
    watchdog.start()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY"), proc.communicate()[1]
        enqueued, written, labelled = (int(x) for x in line.split()[1:])
        assert written < enqueued  # records are still in memory when the signal arrives
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()

    ids, labels = stored(log_url)
    assert enqueued == n + 10
    assert len(ids) == n
    assert set(ids.values()) == {1}
    assert len(labels) == labelled == len(range(0, n // 2, 25))
