"""The prediction log: every served prediction and every feedback label, written exactly once.

Concept: prediction logging and the feedback loop (online monitoring needs the inputs, the outputs
and, later, the ground truth of what was served). The request path only *enqueues* a record; one
background writer thread drains the queue in batches (``batch_size`` records or ``max_delay``
seconds, whichever comes first), one transaction per batch, so no request waits on the disk.
Inserts use ``ON CONFLICT DO NOTHING`` on the request id, so a retried batch or a retried request
is written exactly once. Feedback is rare and synchronous; the unique request id in ``feedback``
arbitrates races, so a repeated label is a no-op and a different label is a conflict, never an
overwrite. The same SQLAlchemy Core code runs on SQLite (WAL, the default) and on PostgreSQL.

Durability bound: ``close()`` (graceful shutdown, also run at interpreter exit) drains everything.
A hard kill (SIGKILL, OOM) loses what is still in memory: the batch being filled plus the queue.
While the writer keeps up the queue is empty, so that is at most one batch: ``batch_size`` records
or ``max_delay`` seconds of traffic; the absolute bound is ``max_queue + batch_size`` records.
A power cut may also lose SQLite's last commits (WAL with ``synchronous=NORMAL`` trades that for
speed). Queue policy: when the queue is full, ``record()`` blocks for at most ``enqueue_timeout``
seconds, then drops the record and counts it in ``stats().dropped``.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time

import sqlalchemy as sa

from serving.log_schema import (
    FeedbackRecord,
    FeedbackResult,
    FeedbackStatus,
    LogStats,
    PredictionLogError,
    PredictionRecord,
    feedback_table,
    insert_ignoring_duplicates,
    make_engine,
    metadata,
    predictions_table,
    utc_now,
)

__all__ = [
    "FeedbackRecord",
    "FeedbackResult",
    "FeedbackStatus",
    "LogStats",
    "PredictionLog",
    "PredictionLogError",
    "PredictionRecord",
    "feedback_table",
    "insert_ignoring_duplicates",
    "make_engine",
    "metadata",
    "predictions_table",
    "utc_now",
]

log = logging.getLogger(__name__)

_STOP = object()


class PredictionLog:
    """Batched, exactly-once prediction log with synchronous, write-once feedback."""

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 256,
        max_delay: float = 0.2,
        max_queue: int = 10_000,
        enqueue_timeout: float = 0.01,
    ) -> None:
        if batch_size < 1 or max_delay <= 0 or max_queue < 1:
            raise PredictionLogError("batch_size and max_queue must be >= 1 and max_delay > 0")
        self.url, self.batch_size, self.max_delay, self.enqueue_timeout = url, batch_size, max_delay, enqueue_timeout
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._counts = {"enqueued": 0, "written": 0, "dropped": 0, "failed": 0}
        self._engine: sa.Engine | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            raise PredictionLogError("prediction log not started; call start() first")
        return self._engine

    def start(self) -> PredictionLog:
        """Create the tables if needed and start the writer thread. Returns self."""
        if self._thread is not None or self._closed:
            raise PredictionLogError("start() may be called once, before close()")
        self._engine = make_engine(self.url)
        try:
            metadata.create_all(self._engine)  # checks, then CREATE TABLE, on both engines
        except sa.exc.DBAPIError:  # another worker created the tables between our check and our CREATE
            metadata.create_all(self._engine)
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)
        return self

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def stats(self) -> LogStats:
        with self._lock:
            return LogStats(**self._counts, queued=self._queue.qsize())

    def record(self, rec: PredictionRecord) -> bool:
        """Enqueue a prediction; never waits on disk. False if dropped because the queue stayed full.

        Records enqueued before ``start()`` are kept and written once the writer starts.
        """
        if self._closed:
            raise PredictionLogError("prediction log is closed; record() before close() (the API lifespan)")
        try:
            self._queue.put(rec, timeout=self.enqueue_timeout)
        except queue.Full:
            self._count("dropped")
            if (dropped := self._counts["dropped"]) == 1 or dropped % 1000 == 0:  # a warning, not a flood
                log.warning("prediction log queue full: %d records dropped so far (last %s)", dropped, rec.request_id)
            return False
        self._count("enqueued")
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until everything recorded before this call is committed. False on timeout."""
        if self._thread is None or not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Drain the queue, stop the writer and release the engine. Idempotent. False if not drained.

        Call it from the service's shutdown hook (the FastAPI lifespan, an atexit hook). A signal
        handler may call it only if the thread it interrupts is not inside ``record()`` (the
        queue's lock is not reentrant); uvicorn's SIGTERM handling sets a flag and runs the
        lifespan, which is safe.
        """
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        atexit.unregister(self.close)
        if self._thread is not None:
            self._queue.put(_STOP)  # FIFO: behind every record already enqueued
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error(
                    "prediction log writer did not finish in %.0f s; %d records lost", timeout, self._queue.qsize()
                )
                return False
            # A record() or flush() racing with close() may have slipped in behind the stop marker.
            late = [self._queue.get_nowait() for _ in range(self._queue.qsize())]
            self._write([r for r in late if isinstance(r, PredictionRecord)])
            for item in late:
                if isinstance(item, threading.Event):
                    item.set()
            self.engine.dispose()
        return self._queue.empty()

    def record_feedback(self, request_id: str, label: str) -> FeedbackResult:
        """Store the ground truth for a request, once. Safe to call from many threads and processes."""
        fb = FeedbackRecord(request_id=request_id, label=str(label))
        if not self._prediction_known(request_id):
            return FeedbackResult(FeedbackStatus.UNKNOWN_REQUEST, request_id, fb.label)
        with self.engine.begin() as conn:  # the unique request id decides who wins a race
            inserted = conn.execute(insert_ignoring_duplicates(self.engine, feedback_table), vars(fb)).rowcount
        if inserted == 1:
            return FeedbackResult(FeedbackStatus.RECORDED, request_id, fb.label)
        with self.engine.connect() as conn:
            stored = conn.scalar(sa.select(feedback_table.c.label).where(feedback_table.c.request_id == request_id))
        status = FeedbackStatus.DUPLICATE if stored == fb.label else FeedbackStatus.CONFLICT
        return FeedbackResult(status, request_id, fb.label, existing_label=stored)

    def _prediction_known(self, request_id: str) -> bool:
        """Is the prediction stored, or about to be? Bounded wait, only for ids not yet in the table.

        It may sit in this process's in-memory batch (flush), or in another worker's, which writes it
        within its ``max_delay``: so look again for a little longer than that before saying unknown.
        """
        if self._prediction_exists(request_id) or (self.flush() and self._prediction_exists(request_id)):
            return True
        deadline = time.monotonic() + 2 * self.max_delay + 0.5
        while time.monotonic() < deadline:
            time.sleep(0.02)  # polling the database for another process's write, not test synchronisation
            if self._prediction_exists(request_id):
                return True
        return False

    def _prediction_exists(self, request_id: str) -> bool:
        query = sa.select(predictions_table.c.request_id).where(predictions_table.c.request_id == request_id)
        with self.engine.connect() as conn:
            return conn.scalar(query) is not None

    def _run(self) -> None:
        batch: list[PredictionRecord] = []
        deadline = 0.0
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()) if batch else None)
            except queue.Empty:
                item = None  # the oldest record has waited max_delay
            if isinstance(item, PredictionRecord):
                if not batch:
                    deadline = time.monotonic() + self.max_delay
                batch.append(item)
                if len(batch) < self.batch_size and time.monotonic() < deadline:
                    continue
            self._write(batch)
            batch = []
            if isinstance(item, threading.Event):  # a flush() waiting for everything before it
                item.set()
            elif item is _STOP:
                return

    def _write(self, batch: list[PredictionRecord]) -> None:
        """Commit a batch in one transaction; retry transient errors; isolate a record the DB rejects.

        While the service runs, a database outage is retried with capped backoff for as long as it
        lasts (the bounded queue then drops and counts new records, requests never wait); once
        ``close()`` has been called, the writer gives up after a few more attempts.
        """
        stmt = insert_ignoring_duplicates(self.engine, predictions_table)
        attempt = 0
        while batch:
            try:
                with self.engine.begin() as conn:
                    conn.execute(stmt, [vars(r) for r in batch])
                self._count("written", len(batch))
                return
            except sa.exc.OperationalError as exc:  # locked or unreachable: the retry is idempotent
                attempt += 1
                if self._closed and attempt >= 5:
                    log.error("prediction log gave up on %d records at shutdown: %s", len(batch), exc)
                    self._count("failed", len(batch))
                    return
                log.warning("prediction log write failed (attempt %d), retrying: %s", attempt, exc)
                time.sleep(min(0.05 * 2**attempt, 2.0))
            except sa.exc.StatementError:  # a record the database rejects (bad type, too long)
                if len(batch) == 1:
                    log.exception("prediction log rejected request %s", batch[0].request_id)
                    self._count("failed")
                    return
                for rec in batch:  # one bad record must not cost the whole batch
                    self._write([rec])
                return
