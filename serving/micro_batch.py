"""Micro-batching: small requests that arrive together are scored in one model call.

Concept: REST serving under load (C18, C43). Scoring with the scikit-learn Pipeline costs almost all
per call (each step re-validates its input), not per row (through ONNX Runtime the cost per call is far
smaller, but a one-row call is still mostly fixed cost): 64 rows cost about as much as one
(docs/benchmarks.md has the figures). Model servers built for throughput therefore batch requests that
arrive at the same moment (Triton's dynamic batcher, TF Serving's batching, Ray Serve's
``@serve.batch``). Here the batch forms without a timer: the first request of a turn of the event
loop yields once, every request that is ready to run meanwhile joins it, and the first then scores
them all. Under load the batch is whatever arrived together -- no wait, no latency budget to tune.
A request that is the only one in flight in its worker does not yield at all: nothing could join it.
The server tells (`serving.slow_clients` puts uvicorn's set of the worker's request tasks in the
scope; a task is in it from its headers on, before it first runs, so requests that arrived together
all count); when no server tells (the TestClient, another server), every request yields as before.
`serving.predict.Predictor.serve_many` does the work: it routes each request on its own (canary
hashing, overrides, pinned versions), scores each model's share in one call and hands every request
its own rows, ids, latency and log entry.

The trade-off, stated: one answer can differ from the same request scored alone in the last bit of a
probability (a matrix product over 64 rows may round differently from one over a single row, about
1e-16); the predicted class is the same. ``MLOPS_MICRO_BATCH_ROWS=0`` scores each request alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from serving.predict import Request

if TYPE_CHECKING:
    import numpy as np

    from serving.predict import Predictor, Served

log = logging.getLogger(__name__)


class MicroBatcher:
    """Scores the small requests of one event loop that arrive in the same turn together."""

    def __init__(self, predictor: Callable[[], Predictor], max_rows: int) -> None:
        self.predictor, self.max_rows = predictor, max_rows
        self._followers: list[tuple[Request, asyncio.Future[Served]]] = []
        self._leading = False  # a request is gathering this turn's batch
        self.flushes = 0  # batches scored so far (tests read it)
        self.alone = 0  # of them, requests scored at once because no other request was in flight

    async def serve(
        self,
        values: np.ndarray,
        request_id: str,
        in_flight: Collection[asyncio.Task[Any]] | None = None,
        **options: Any,
    ) -> Served:
        """What `Predictor.serve` returns (or raises) for this request, scored together with its neighbours.

        ``options``: `Predictor.serve`'s keywords (user_id, override, version, labels_only, groups). The first
        request of a turn leads: it yields once, so every request that is ready to run joins it (they
        wait on a future), then scores them all and answers itself directly. ``in_flight``: the worker's
        request tasks, when the server publishes them; if no other one is running, the request is scored
        at once, without the loop turn (`alone`).
        """
        request = Request(values, request_id, start=time.perf_counter(), **options)
        if self._leading:
            answer: asyncio.Future[Served] = asyncio.get_running_loop().create_future()
            self._followers.append((request, answer))
            return await answer
        if in_flight is not None and alone(in_flight):
            self.alone += 1
            mine = self._flush(request, [])
            if isinstance(mine, Exception):
                raise mine
            return mine
        self._leading = True
        try:
            await asyncio.sleep(0)  # one turn of the loop: the requests ready to run reach `serve` meanwhile
        finally:  # also when cancelled: the followers must get their answers
            followers, self._followers, self._leading = self._followers, [], False
            mine = self._flush(request, followers)
        if isinstance(mine, Exception):
            raise mine
        return mine

    def _flush(self, leader: Request, followers: list[tuple[Request, asyncio.Future[Served]]]) -> Served | Exception:
        """Score the batch in chunks of at most ``max_rows`` rows; answer the followers, return the leader's answer."""
        self.flushes += 1
        requests = [leader, *(request for request, _ in followers)]
        answers: list[Served | Exception] = []
        for chunk in _chunks(requests, self.max_rows):
            try:
                answers += self.predictor().serve_many(chunk)
            except Exception as err:  # a bug here must fail these requests, not hang them
                log.exception("micro-batch of %d requests failed", len(chunk))
                answers += [err] * len(chunk)
        for (_, future), answer in zip(followers, answers[1:], strict=True):
            if future.done():  # the client went away (task cancelled): nothing is answered or logged
                continue
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)
        return answers[0]


def alone(in_flight: Collection[asyncio.Task[Any]]) -> bool:
    """No request task but the current one is running (a finished one may wait in the set for its removal)."""
    current = asyncio.current_task()
    return not any(task is not current and not task.done() for task in in_flight)


def _chunks(requests: list[Request], max_rows: int) -> list[list[Request]]:
    """Consecutive groups of requests with at most ``max_rows`` rows each (a bigger request stays whole)."""
    chunks: list[list[Request]] = []
    current: list[Request] = []
    rows = 0
    for request in requests:
        n = len(request.values)
        if current and rows + n > max_rows:
            chunks.append(current)
            current, rows = [], 0
        current.append(request)
        rows += n
    if current:
        chunks.append(current)
    return chunks
