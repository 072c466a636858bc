"""AWS Lambda entry point: the service's own FastAPI app behind Mangum, started once per execution environment.

Concept: serverless deployment (C55). Lambda calls ``handler(event, context)`` with an API Gateway
HTTP API event (payload format 2.0); Mangum, an established ASGI adapter, turns it into an ASGI
request for the app that `serving.app.create_app` builds for ``mlops-lab serve``, so every route,
contract, error shape and log record is the long-running service's. Three things differ, on purpose:

- **The lifespan runs once per execution environment, not per request.** Mangum 0.22 with
  ``lifespan="auto"`` enters and leaves the ASGI lifespan around *every* invocation, which here would
  load the models from the registry and open the prediction log on each request. So Mangum runs with
  ``lifespan="off"`` and `LambdaApp` drives the app's lifespan itself (Mangum's `LifespanCycle`) on the
  event loop every invocation reuses: the first call is the cold start (models loaded, log opened,
  poller started), later calls in the same environment find everything warm.
- **The prediction log is committed before the answer returns.** Lambda freezes the environment as soon
  as the handler returns, so the log's background writer cannot be trusted to write later. After each
  invocation the handler flushes the log (`PredictionLog.flush`); if rows this invocation enqueued are not
  committed in time, the answer is replaced by a 503 in the service's error shape, so nothing is served
  unlogged. A retry with the same ``X-Request-Id`` is written once (inserts ignore a known request id).
- **Access lines are written synchronously** through the ``serving.access`` logger (stdout, which Lambda
  sends to CloudWatch): the service's batching writer thread would be frozen with lines still queued.

Where state lives: nothing that matters stays in the environment. The registry (``MLOPS_TRACKING_URI``)
and the prediction log with the routing state (``MLOPS_PREDICTION_LOG_URL``, PostgreSQL) must be external
services; on a real Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set) SQLite for either is refused at the cold start
(`external_state_problems`). SQLite under a temporary folder is for local tests and the demo only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mangum import Mangum
from mangum.protocols import LifespanCycle

from core.settings import Settings
from serving.app import create_app
from serving.errors import error_response

if TYPE_CHECKING:
    from core.params import Params
    from serving.runtime import Runtime

log = logging.getLogger(__name__)
FLUSH_TIMEOUT_S = 5.0  # longest wait for the prediction log before an answer is withheld
FLUSH_MARGIN_S = 0.5  # time left for Lambda to ship the answer after the flush
LAMBDA_ENV = "AWS_LAMBDA_FUNCTION_NAME"  # set by Lambda in every execution environment


class StateNotExternalError(RuntimeError):
    """On a real Lambda the registry or the prediction log points at the environment's own disk."""


def external_state_problems(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Why this configuration would lose or split state on Lambda ([] off Lambda, or when all of it is shared).

    An execution environment's disk lives as long as the environment, and each concurrent request runs in
    its own environment: a SQLite registry there is empty, and a SQLite prediction log is lost and split.
    """
    if not environ.get(LAMBDA_ENV):
        return []
    problems = []
    if settings.mlflow_tracking_uri.startswith("sqlite"):
        problems.append("MLOPS_TRACKING_URI is SQLite in the environment's own disk: point it at the MLflow server")
    if settings.prediction_log_uri.startswith("sqlite"):
        problems.append(
            "MLOPS_PREDICTION_LOG_URL is SQLite in the environment's own disk: point it at PostgreSQL "
            "(postgresql+psycopg://...), shared by every environment and by the long-running service"
        )
    if not (settings.feedback_key or settings.admin_token):
        problems.append(
            "MLOPS_FEEDBACK_KEY is unset: each environment would sign feedback tokens with a random key of its own, "
            "and /v1/feedback answered by another environment would refuse them"
        )
    return problems


class LambdaApp:
    """The app with its lifespan entered once, and Mangum over it; call it with (event, context)."""

    def __init__(self, settings: Settings, params: Params | None = None, flush_timeout_s: float = FLUSH_TIMEOUT_S):
        problems = external_state_problems(settings, os.environ)
        if problems:
            raise StateNotExternalError("; ".join(problems))
        started = time.perf_counter()
        # One event loop for the environment's life: the lifespan's task waits on it between invocations.
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.app = create_app(settings.model_copy(update={"access_log": False}), params)
        if settings.access_log:
            _access_lines_to_stdout()
        self.adapter = Mangum(self.app, lifespan="off")
        self._lifespan = LifespanCycle(self.app, "on")
        self._lifespan.__enter__()  # runs the app's lifespan start-up: models loaded, log opened
        self.runtime: Runtime = self.app.state.runtime
        self.flush_timeout_s = flush_timeout_s
        self.cold_start_s = time.perf_counter() - started
        self.invocations = 0
        self._closed = False

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """Answer one event; the rows it enqueued are committed before the answer is returned."""
        if self._closed:
            raise RuntimeError("this LambdaApp was closed; build a new one")
        self.invocations += 1
        prediction_log = self.runtime.log
        before = prediction_log.stats().enqueued if prediction_log is not None else 0
        answer = self.adapter(event, context)
        enqueued = prediction_log is not None and prediction_log.stats().enqueued > before
        if enqueued and prediction_log is not None and not prediction_log.flush(self._flush_budget(context)):
            return _withheld(answer, prediction_log.stats().write_error)
        return answer

    def _flush_budget(self, context: Any) -> float:
        remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
        if remaining_ms is None:
            return self.flush_timeout_s
        return max(0.0, min(self.flush_timeout_s, remaining_ms() / 1000 - FLUSH_MARGIN_S))

    def close(self) -> None:
        """Run the lifespan's shutdown (the log drained, the poller stopped); tests and the demo call it."""
        if not self._closed:
            self._closed = True
            self._lifespan.__exit__(None, None, None)
            self.loop.close()
            asyncio.set_event_loop(None)  # no closed loop left behind as the thread's current one


def _access_lines_to_stdout() -> None:
    """The ``serving.access`` logger writes each JSON line to stdout as it comes (once per process)."""
    access = logging.getLogger("serving.access")
    if not any(getattr(h, "_mlops_lambda", False) for h in access.handlers):
        stream = logging.StreamHandler(sys.stdout)
        stream.setFormatter(logging.Formatter("%(message)s"))  # the line is JSON already
        stream._mlops_lambda = True  # type: ignore[attr-defined]
        access.addHandler(stream)
    access.setLevel(logging.INFO)
    access.propagate = False  # Lambda's root handler would print each line a second time


def _withheld(answer: dict[str, Any], write_error: str | None) -> dict[str, Any]:
    """A 503 in the service's error shape instead of an answer whose log rows are not committed."""
    reason = write_error or "the write did not finish in time"
    response = error_response(
        503,
        f"prediction log unavailable ({reason}); the answer was withheld so that nothing is served unlogged. "
        "Retry with the same X-Request-Id: it is recorded once.",
        [],
        {"Retry-After": "1"},
    )
    headers = {k: v for k, v in response.headers.items() if k != "content-length"}
    request_id = (answer.get("headers") or {}).get("x-request-id")
    if request_id:
        headers["x-request-id"] = request_id
    return {"statusCode": 503, "headers": headers, "body": bytes(response.body).decode(), "isBase64Encoded": False}


_built: LambdaApp | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (``serving.lambda_handler.handler``): settings from the environment, built once."""
    global _built
    if _built is None:
        _built = LambdaApp(Settings())  # the first invocation is the cold start
    return _built(event, context)
