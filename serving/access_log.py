"""Structured access logs: one JSON line per request on stdout, written off the event loop.

Concept: logging beside monitoring (C30). Metrics say *how many* and *how slow*; a log line says
*which request*: its id (to find its prediction and feedback), the arm and model version that
served it, the status and the latency. `serving.metrics.MetricsMiddleware` builds the line and,
while this writer runs, hands it over with `AccessLog.write`. Writing to a stream from the request
path would put a blocking ``write`` on the event loop for every request, a queue listener would
wake a thread for every request, and even a `logging` call costs tens of microseconds. So ``write``
only appends the line to an in-memory deque, and one writer thread wakes every ``interval`` seconds
and writes what gathered in a single call. With the writer off, lines go to the ``serving.access``
logger instead, for a custom logging setup. ``stop`` (the
app's shutdown) writes the rest, so no line is lost on a graceful exit; a hard kill loses at most
``interval`` seconds of lines. ``MLOPS_ACCESS_LOG=false`` turns the lines off.

Every line starts with ``ts`` (UTC, milliseconds) and ``level`` (info, warning for a 4xx, error for
a 5xx). Uvicorn's own lines (start-up, shutdown, errors) are JSON too, with the same two keys first
(`JsonLogFormatter`, `UVICORN_LOG_CONFIG`, used by `serving.server.run_server`), so one parser reads
the whole stream.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections import deque
from typing import Any, TextIO

import orjson

ACCESS_LOGGER = "serving.access"
_LEVELS = {"WARNING": "warning", "ERROR": "error", "CRITICAL": "error", "DEBUG": "debug"}


def utc_timestamp(epoch: float | None = None) -> str:
    """``2026-12-06T22:41:05.123Z``: UTC to the millisecond, the ``ts`` of every log line.

    The same text as ``datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")`` (microseconds
    rounded half-even as ``datetime`` does, then cut to milliseconds), but the date and time of day are
    formatted once per second (`_second_text`): every request writes a line, and ``datetime`` cost several
    microseconds of each.
    """
    moment = time.time() if epoch is None else epoch
    second = math.floor(moment)
    micros = round((moment - second) * 1e6)
    if micros >= 1_000_000:  # rounding reached the next second, as in datetime.fromtimestamp
        second, micros = second + 1, micros - 1_000_000
    return f"{_second_text(second)}.{micros // 1000:03d}Z"


_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def _second_text(second: int) -> str:
    """``2026-12-06T22:41:05`` for a whole UTC second, remembered for the last second asked (one tuple swap)."""
    global _last_second
    cached, text = _last_second
    if second != cached:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last_second = (second, text)
    return text


class JsonLogFormatter(logging.Formatter):
    """A log record as one JSON line: ``ts``, ``level``, ``logger``, ``message`` (and ``exception``)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": utc_timestamp(record.created),
            "level": _LEVELS.get(record.levelname, "info"),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


# Uvicorn's loggers through `JsonLogFormatter` on stderr (the access lines are ours, on stdout).
UVICORN_LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "serving.access_log.JsonLogFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}


class AccessLog:
    """A batched JSON-line writer for the access log, running while the app runs."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.05) -> None:
        self.stream, self.interval = stream, interval
        self._lines: deque[str] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def write(self, line: str) -> None:
        """Queue one line (thread-safe, never blocks); it is written within ``interval`` seconds."""
        self._lines.append(line)

    def start(self) -> AccessLog:
        self.stream = self.stream or sys.stdout  # bound now: a later swap of sys.stdout never gets our lines
        self._stop.clear()
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
        """Write every pending line and stop the writer (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
