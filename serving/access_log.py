"""Structured access logs: one JSON line per request on stdout, written off the event loop.

Concept: logging beside monitoring (C30). Metrics say *how many* and *how slow*; a log line says
*which request*: its id (to find its prediction and feedback), the arm and model version that
served it, the status and the latency. `serving.metrics.MetricsMiddleware` builds the line; this
module decides where it goes. A handler writing to a stream from the request path would put a
blocking ``write`` on the event loop for every request, and a queue listener would wake a thread
for every request. So the handler only appends the line to an in-memory deque, and one writer
thread wakes every ``interval`` seconds and writes what gathered in a single call. ``stop`` (the
app's shutdown) writes the rest, so no line is lost on a graceful exit; a hard kill loses at most
``interval`` seconds of lines. ``MLOPS_ACCESS_LOG=false`` turns the lines off.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from typing import TextIO

ACCESS_LOGGER = "serving.access"


class _DequeHandler(logging.Handler):
    def __init__(self, lines: deque[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())  # deque.append is thread-safe and never blocks


class AccessLog:
    """Attach a batched JSON-line writer to the ``serving.access`` logger while the app runs."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.05) -> None:
        self.stream, self.interval = stream, interval
        self._lines: deque[str] = deque()
        self._handler = _DequeHandler(self._lines)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> AccessLog:
        self.stream = self.stream or sys.stdout  # bound now: a later swap of sys.stdout never gets our lines
        logger = logging.getLogger(ACCESS_LOGGER)
        logger.addHandler(self._handler)
        logger.setLevel(logging.INFO)
        self._thread = threading.Thread(target=self._run, name="access-log-writer", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._write()
        self._write()

    def _write(self) -> None:
        lines = []
        while self._lines:
            lines.append(self._lines.popleft())
        if lines and self.stream is not None:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def stop(self) -> None:
        """Detach the handler and write every pending line (idempotent)."""
        logging.getLogger(ACCESS_LOGGER).removeHandler(self._handler)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
