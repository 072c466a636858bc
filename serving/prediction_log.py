"""The prediction log: every served prediction and every feedback label, written exactly once.

Concept: prediction logging and the feedback loop (online monitoring needs the inputs, the outputs
and, later, the ground truth of what was served). The request path only *enqueues* a record; one
background writer thread drains the queue in batches (``batch_size`` records or ``max_delay``
seconds, whichever comes first), one transaction per batch, so no request waits on the disk.
Inserts use ``ON CONFLICT DO NOTHING`` on the request id, so a retried batch or a retried request
is written exactly once. Feedback is rare and synchronous; the unique request id in ``feedback``
arbitrates races, so a repeated label is a no-op and a different label is a conflict, never an
overwrite. The same SQLAlchemy Core code runs on SQLite (WAL, the default) and on PostgreSQL; on
SQLite the writer's inserts take `serving.log_insert` (same rows, a fraction of the interpreter time
the writer would otherwise take from the request path).

Backpressure, never silent loss: the log holds at most ``max_pending_rows`` rows that are accepted
but not yet committed. ``record()`` waits up to ``enqueue_timeout`` seconds for room and otherwise
*refuses* the rows (``False``, counted in ``stats().refused``); the API then answers 503 and does not
return the prediction, so nothing is served without being logged. A request is one queue item
(`ServedRows`, expanded into table rows by the writer thread), so a 10,000-row batch costs the
request one queue put.

Faults that last (a full disk, a database that is down): the writer retries with capped backoff for
as long as the service runs, in transactions of at most ``chunk_rows`` rows (a request's own rows are
never split), so the log recovers piece by piece as space frees instead of waiting for room for the
whole backlog at once. While writes fail, ``stats().write_error`` says why (the readiness report shows
it as degraded, /metrics as ``mlops_prediction_log_write_ok 0``), the backlog fills, and then new requests are
refused with 503 as above. At shutdown the writer tries a few more times and then gives up: those rows
are counted in ``stats().dropped`` and logged as an error with their number, never silently.

The database file: on SQLite the log remembers which file it opened (`serving.log_file`) and checks
it before every batch. A file replaced under the service (a restore while it ran) is reopened, and a
deleted one gets no rows (they stay queued, then requests get 503s); either way ``file_problem`` says
so and /readyz reports degraded. A restore is refused while the service runs (`core.state_lease`).

Durability bound: ``close()`` (graceful shutdown, also run at interpreter exit) drains everything.
A hard kill (SIGKILL, OOM) loses what is accepted but not yet committed: while the writer keeps up
that is the batch being filled, ``batch_size`` rows or ``max_delay`` seconds of traffic; the
absolute bound is ``max_pending_rows`` rows. A power cut may also lose SQLite's last commits (WAL
with ``synchronous=NORMAL`` trades that for speed).
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from core.redact import redact
from core.schema import ensure_schema
from serving.log_file import DatabaseFile, FileState
from serving.log_insert import DriverInsert
from serving.log_schema import (
    FeedbackBusyError,
    FeedbackRecord,
    FeedbackResult,
    FeedbackStatus,
    LogItem,
    LogStats,
    PredictionLogError,
    PredictionRecord,
    ServedRows,
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
    "ServedRows",
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
        max_pending_rows: int = 100_000,
        enqueue_timeout: float = 5.0,
        max_waiting_feedback: int = 8,
        chunk_rows: int = 4096,
    ) -> None:
        if batch_size < 1 or max_delay <= 0 or max_pending_rows < 1 or chunk_rows < 1:
            raise PredictionLogError("batch_size, chunk_rows and max_pending_rows must be >= 1 and max_delay > 0")
        self.url, self.batch_size, self.max_delay, self.chunk_rows = url, batch_size, max_delay, chunk_rows
        self.max_pending_rows, self.enqueue_timeout = max_pending_rows, enqueue_timeout
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # notified whenever committed rows free room
        self._pending = 0  # rows accepted and not yet committed (or given up)
        self._due = threading.Event()  # wakes the writer early: a full batch, a flush or a close
        self._counts = {"enqueued": 0, "written": 0, "refused": 0, "failed": 0, "dropped": 0}
        self._write_error: str | None = None  # set while writes fail (writer thread), cleared by a success
        self._given_up = False  # at shutdown, after the first chunk given up the rest get one attempt each
        self._engine: sa.Engine | None = None
        self._driver: DriverInsert | None = None  # SQLite: rows go to the driver's executemany directly
        self._thread: threading.Thread | None = None
        self._closed = False
        self._file: DatabaseFile | None = None  # SQLite: the file opened, watched before each batch
        self._reopening = threading.Lock()
        self.file_problem: str | None = None  # readiness detail once the file was replaced or deleted
        # Feedback for an id not stored yet waits up to ~2 max_delay for another worker's write. At most
        # this many wait at once: a flood of unknown ids cannot tie up the threads real requests need.
        self._waits = threading.BoundedSemaphore(max_waiting_feedback)
        self._waiting = 0  # feedback requests in that wait now (under _lock)

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            raise PredictionLogError("prediction log not started; call start() first")
        return self._engine

    def start(self) -> PredictionLog:
        """Create the tables if needed and start the writer thread. Returns self."""
        if self._thread is not None or self._closed:
            raise PredictionLogError("start() may be called once, before close()")
        self._open()
        if self.engine.dialect.name == "sqlite" and self.engine.url.database:
            self._file = DatabaseFile(Path(self.engine.url.database).resolve())
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)
        return self

    def _open(self) -> None:
        self._engine = make_engine(self.url)
        ensure_schema(self._engine)  # migrations to head, under the database's lock; once per open, not per write
        self._driver = DriverInsert.for_engine(self._engine)

    def _file_writable(self) -> bool:
        """SQLite: is the database still the file we opened? Reopen on a replaced one; False while none exists.

        Checked before every batch (one ``os.stat``), so rows never go to a file that was moved away.
        """
        if self._file is None or self._file.state() is FileState.SAME:
            return True
        with self._reopening:  # the writer and a feedback request may both notice it
            state, where = self._file.state(), self._file.path
            if state is FileState.MISSING:
                problem = f"the prediction log database {where} was deleted under the service; rows stay queued"
                if self.file_problem != problem:
                    log.error("%s (new requests get 503 once the log is full); restore the file or restart", problem)
                self.file_problem = problem
                return False
            if state is FileState.REPLACED:
                old = self.engine
                self._file.adopt()  # first: a file swapped again while we reopen is noticed at the next batch
                self._open()
                old.dispose()
                self.file_problem = (
                    f"the prediction log database {where} was replaced under the service (a restore while it "
                    f"ran?) at {utc_now().isoformat(timespec='seconds')}; reopened on the new file, rows since "
                    "go there. Restart the service to clear this"
                )
                log.error("%s", self.file_problem)
        return True

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    @property
    def feedback_waiting(self) -> int:
        """Feedback requests waiting now for a prediction not stored yet (at most ``max_waiting_feedback``)."""
        with self._lock:
            return self._waiting

    def stats(self) -> LogStats:
        with self._lock:
            return LogStats(**self._counts, queued=self._pending, write_error=self._write_error)

    def record(self, item: LogItem, timeout: float | None = None) -> bool:
        """Accept a prediction (one row, or all rows of a request) for writing; never waits on disk.

        Waits up to ``timeout`` seconds (default ``enqueue_timeout``; 0 = do not wait) while the
        log is full, then refuses: False, and the rows are counted in ``stats().refused``. An item
        larger than the whole capacity is accepted when nothing else is pending. Items recorded
        before ``start()`` are kept and written once the writer starts.
        """
        if self._closed:
            raise PredictionLogError("prediction log is closed; record() before close() (the API lifespan)")
        n = len(item)
        with self._room:
            # Room now (the usual case) needs no predicate closure and no Condition.wait_for call.
            has_room = self._pending == 0 or self._pending + n <= self.max_pending_rows
            if not has_room:
                has_room = self._room.wait_for(
                    lambda: self._pending == 0 or self._pending + n <= self.max_pending_rows,
                    timeout=self.enqueue_timeout if timeout is None else timeout,
                )
            if not has_room:
                self._counts["refused"] += n
                return False
            self._pending += n
            self._counts["enqueued"] += n
            full_batch = self._pending >= self.batch_size
        self._queue.put(item)
        if full_batch and not self._due.is_set():  # set() takes a lock and notifies: only when it changes
            self._due.set()
        return True

    def _release(self, n: int) -> None:
        with self._room:
            self._pending -= n
            self._room.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until everything recorded before this call is committed. False on timeout."""
        if self._thread is None or not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        self._queue.put(done)
        self._due.set()
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Drain the queue, stop the writer and release the engine. Idempotent. False if not all was written.

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
            self._due.set()
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("prediction log writer did not finish in %.0f s; %d rows lost", timeout, self._pending)
                return False
            # A record() or flush() racing with close() may have slipped in behind the stop marker.
            late = [self._queue.get_nowait() for _ in range(self._queue.qsize())]
            self._write([r for r in late if isinstance(r, PredictionRecord | ServedRows)])
            for item in late:
                if isinstance(item, threading.Event):
                    item.set()
            self.engine.dispose()
        return self._queue.empty() and self._pending == 0 and self._counts["dropped"] == 0

    def record_feedback(self, request_id: str, label: str) -> FeedbackResult:
        """Store the ground truth for a request, once. Safe to call from many threads and processes."""
        fb = FeedbackRecord(request_id=request_id, label=str(label))
        self._file_writable()  # a replaced file is reopened before the label is written
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
        if not self._waits.acquire(blocking=False):
            raise FeedbackBusyError(
                "too many feedback requests are waiting for predictions not stored yet; retry in a second"
            )
        with self._lock:
            self._waiting += 1
        try:
            deadline = time.monotonic() + 2 * self.max_delay + 0.5
            while time.monotonic() < deadline:
                time.sleep(0.02)  # polling the database for another process's write, not test synchronisation
                if self._prediction_exists(request_id):
                    return True
            return False
        finally:
            with self._lock:
                self._waiting -= 1
            self._waits.release()

    def _prediction_exists(self, request_id: str) -> bool:
        query = sa.select(predictions_table.c.request_id).where(predictions_table.c.request_id == request_id)
        with self.engine.connect() as conn:
            return conn.scalar(query) is not None

    def _run(self) -> None:
        """Sleep until there is work, let a batch gather, write it; markers are handled in queue order.

        The writer is woken by the first record after an idle spell, then sleeps until the batch is
        due (``max_delay``), or ``batch_size`` rows are pending, or a flush/close asks -- not once
        per record, so the request path pays a queue put and never a thread switch.
        """
        while True:
            first = self._queue.get()
            if isinstance(first, PredictionRecord | ServedRows):
                self._due.wait(self.max_delay)
            self._due.clear()
            items = [first]
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batch: list[LogItem] = []
            stop = False
            for item in items:
                if isinstance(item, PredictionRecord | ServedRows):
                    batch.append(item)
                    continue
                self._write(batch)  # everything before a marker is committed before it is answered
                batch = []
                if isinstance(item, threading.Event):  # a flush() waiting for everything before it
                    item.set()
                elif item is _STOP:
                    stop = True  # a record() racing with close() may sit behind it: written below
            self._write(batch)
            if stop:
                return

    def _write(self, items: list[LogItem]) -> None:
        """Commit the items' rows in transactions of about ``chunk_rows`` rows, freeing room after each."""
        chunk: list[LogItem] = []
        rows = 0
        for item in items:
            if chunk and rows + len(item) > self.chunk_rows:
                self._write_chunk(chunk)
                chunk, rows = [], 0
            chunk.append(item)
            rows += len(item)
        if chunk:
            self._write_chunk(chunk)

    def _write_chunk(self, items: list[LogItem]) -> None:
        """Commit the items' rows in one transaction, then free their room in the log."""
        n = sum(len(item) for item in items)
        try:
            if self._driver is not None:  # SQLite: tuples straight from the items (`serving.log_insert`)
                self._insert(self._driver.rows(items, self._reject))
            else:
                self._insert([row for item in items for row in item.rows()])
        finally:
            self._release(n)

    def _reject(self, request_id: str) -> None:
        """A row the database (or its JSON encoding) refuses: logged with its id and counted, never retried."""
        log.exception("prediction log rejected request %s", request_id)
        self._count("failed")

    def _insert(self, rows: list[Any]) -> None:
        """Insert rows in one transaction; retry transient errors; isolate a row the DB rejects.

        While the service runs, a database outage is retried with capped backoff for as long as it
        lasts (the log fills up, then new requests get 503s instead of unlogged answers); once
        ``close()`` has been called, the writer gives up after a few more attempts.
        """
        attempt = 0
        while rows:
            if not self._file_writable():  # deleted: keep the rows, as in an outage, until a file is back
                attempt += 1
                with self._lock:
                    self._write_error = self.file_problem
                if self._closed and (attempt >= 5 or self._given_up):
                    self._given_up = True
                    log.error("prediction log dropped %d rows at shutdown: %s", len(rows), self.file_problem)
                    self._count("dropped", len(rows))
                    return
                time.sleep(min(0.05 * 2**attempt, 2.0))
                continue
            stmt = insert_ignoring_duplicates(self.engine, predictions_table)
            try:
                with self.engine.begin() as conn:
                    if self._driver is not None:
                        for sql, params in self._driver.statements(rows):
                            conn.exec_driver_sql(sql, params)
                    else:
                        conn.execute(stmt, rows)
                with self._lock:
                    self._counts["written"] += len(rows)
                    self._write_error = None
                return
            except sa.exc.OperationalError as exc:  # locked, unreachable, disk full: the retry is idempotent
                attempt += 1
                reason = redact(str(exc.orig or exc).splitlines()[0])[:300]  # not the statement and its rows
                with self._lock:
                    self._write_error = reason
                if self._closed and (attempt >= 5 or self._given_up):
                    self._given_up = True
                    log.error("prediction log dropped %d rows at shutdown, the database still fails: %s", len(rows),
                              reason)  # fmt: skip
                    self._count("dropped", len(rows))
                    return
                log.warning("prediction log write of %d rows failed (attempt %d), retrying: %s", len(rows), attempt,
                            reason)  # fmt: skip
                time.sleep(min(0.05 * 2**attempt, 2.0))
            except sa.exc.StatementError:  # a row the database rejects (bad type, too long)
                if len(rows) == 1:
                    row = rows[0]
                    self._reject(row[0] if isinstance(row, tuple) else row["request_id"])  # tuples: id first
                    return
                for row in rows:  # one bad row must not cost the whole batch
                    self._insert([row])
                return
