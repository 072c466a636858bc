"""Micro-batching: small requests that arrive together are scored in one model call.

Concept: REST serving under load (C18, C43). Scoring one row with the scikit-learn Pipeline costs
about 0.3 ms, and almost all of it is per call (each step re-validates its input), not per row: 64
rows cost about as much as one. Model servers built for throughput therefore batch requests that
arrive at the same moment (Triton's dynamic batcher, TF Serving's batching, Ray Serve's
``@serve.batch``). Here the batch forms without any waiting: a request joins the queue and, if it
is the first, schedules a flush on the event loop's *next* turn; every request that reaches the
queue before that turn rides along. A lone request therefore waits for one loop turn (a few
microseconds), and under load the batch is whatever arrived meanwhile -- no timer, no added latency
budget to tune. `serving.predict.Predictor.serve_many` does the work: it routes each request on its
own (canary hashing, overrides, pinned versions), scores each model's share in one call and hands
every request its own rows, ids, latency and log entry.

The trade-off, stated: one answer can differ from the same request scored alone in the last bit of a
probability (a matrix product over 64 rows may round differently from one over a single row, about
1e-16); the predicted class is the same. ``MLOPS_MICRO_BATCH_ROWS=0`` scores each request alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from serving.predict import Request

if TYPE_CHECKING:
    import numpy as np

    from serving.predict import Predictor, Served

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Waiting:
    request: Request
    answer: asyncio.Future[Served]


class MicroBatcher:
    """Queues small requests of one event loop and scores them together on the loop's next turn."""

    def __init__(self, predictor: Callable[[], Predictor], max_rows: int) -> None:
        self.predictor, self.max_rows = predictor, max_rows
        self._queue: list[_Waiting] = []
        self._flush_scheduled = False
        self.flushes = 0  # model-call rounds run so far (tests read it)

    async def serve(self, values: np.ndarray, request_id: str, **options: Any) -> Served:
        """What `Predictor.serve` returns (or raises) for this request, scored together with its neighbours.

        ``options``: `Predictor.serve`'s keywords (user_id, override, version, labels_only).
        """
        loop = asyncio.get_running_loop()
        request = Request(values, request_id, start=time.perf_counter(), **options)
        waiting = _Waiting(request, loop.create_future())
        self._queue.append(waiting)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await waiting.answer

    def _flush(self) -> None:
        """Score everything queued, in chunks of at most ``max_rows`` rows; never leave a request waiting."""
        queue, self._queue, self._flush_scheduled = self._queue, [], False
        self.flushes += 1
        for chunk in _chunks(queue, self.max_rows):
            try:
                answers = self.predictor().serve_many([w.request for w in chunk])
            except Exception as err:  # a bug here must fail these requests, not hang them
                log.exception("micro-batch of %d requests failed", len(chunk))
                answers = [err] * len(chunk)
            for waiting, answer in zip(chunk, answers, strict=True):
                if waiting.answer.done():  # the client went away (task cancelled): nothing is answered or logged
                    continue
                if isinstance(answer, Exception):
                    waiting.answer.set_exception(answer)
                else:
                    waiting.answer.set_result(answer)


def _chunks(queue: list[_Waiting], max_rows: int) -> list[list[_Waiting]]:
    """Consecutive groups of requests with at most ``max_rows`` rows each (a bigger request stays whole)."""
    chunks: list[list[_Waiting]] = []
    current: list[_Waiting] = []
    rows = 0
    for waiting in queue:
        n = len(waiting.request.values)
        if current and rows + n > max_rows:
            chunks.append(current)
            current, rows = [], 0
        current.append(waiting)
        rows += n
    if current:
        chunks.append(current)
    return chunks
