"""Structured access logs: one JSON line per request on stdout, written off the event loop.

Concept: logging beside monitoring (C30). Metrics say *how many* and *how slow*; a log line says
*which request*: its id (to find its prediction and feedback), the arm and model version that
served it, the status and the latency. `serving.metrics.MetricsMiddleware` builds the line; this
module decides where it goes. A handler writing to a stream from the request path would put a
blocking ``write`` on the event loop for every request, so the logger only enqueues the record
(`logging.handlers.QueueHandler`) and a `QueueListener` thread writes it. ``stop`` (the app's
shutdown) drains the queue, so no line is lost on a graceful exit. Lines go to stdout, where a
container runtime or a log shipper collects them; ``MLOPS_ACCESS_LOG=false`` turns them off.
"""

from __future__ import annotations

import logging
import queue
import sys
from logging.handlers import QueueHandler, QueueListener
from typing import TextIO

ACCESS_LOGGER = "serving.access"


class AccessLog:
    """Attach a queue-backed JSON-line handler to the ``serving.access`` logger while the app runs."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._handler: QueueHandler | None = None
        self._listener: QueueListener | None = None

    def start(self) -> AccessLog:
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        writer = logging.StreamHandler(self.stream or sys.stdout)
        writer.setFormatter(logging.Formatter("%(message)s"))  # the message is already one JSON object
        self._listener = QueueListener(records, writer)
        self._handler = QueueHandler(records)
        logger = logging.getLogger(ACCESS_LOGGER)
        logger.addHandler(self._handler)
        logger.setLevel(logging.INFO)
        self._listener.start()
        return self

    def stop(self) -> None:
        """Detach the handler and write every queued line (idempotent)."""
        if self._handler is not None:
            logging.getLogger(ACCESS_LOGGER).removeHandler(self._handler)
            self._handler = None
        if self._listener is not None:
            self._listener.stop()  # processes what is queued, then joins the thread
            self._listener = None
