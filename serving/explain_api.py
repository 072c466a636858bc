"""``POST /v1/explain``: why the served model gives one row its class, as additive feature contributions.

Concept: model explanations (C57). The request is /v1/predict's one-row body (flat feature fields; a
``{"rows": [...]}`` batch is a 422 naming ``rows``), with the same headers and the same 422 naming the
field. The model explained is the one the router would serve this request
(``X-User-Id`` keeps a user on their arm, ``X-Force-Arm`` works as on predict, admin token and all), or the
version pinned with ``?version=N``. Where the service scores through ONNX Runtime, the explanation is of
the verified scikit-learn Pipeline of the same version (`serving.model_cache.explainable_pipeline`), whose
answers the ONNX file was parity-checked against at registration.

The math is `pipelines.explain`; this module only parses, routes and answers. An explanation is not a
served prediction: nothing is written to the prediction log and no prediction counter moves, so monitoring
and analyses never see explain calls. They are counted like any HTTP request (``http_requests_total``
and latency with ``route="/v1/explain"``) and written to the access log with their request id, arm and
version. The work (SHAP for a forest, SVC or KNN) runs on the threadpool, never on the event loop, and the
/v1/predict hot path (`serving.hot_routes`, the micro-batcher) is untouched.

Explanations run one at a time per process (SHAP's explainers keep per-call state), and each one waiting for its
turn holds a threadpool worker. So at most ``MLOPS_EXPLAIN_QUEUE`` (``settings.explain_queue``) may wait while
one runs; a request beyond that is answered 503 with ``Retry-After`` at once, before any work, and counted like
any answer (``http_requests_total{route="/v1/explain",status="503"}``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from serving import headers
from serving.contract import Problem, RequestContract
from serving.credentials import CredentialError
from serving.errors import documented, error_response, invalid_request, validation_problems
from serving.hot_routes import header_values
from serving.limits import client_key
from serving.model_cache import explainable_pipeline
from serving.native_api import PREDICT_ERRORS, PREDICT_HEADERS, credential_error, is_json, serving_error
from serving.native_body import BodyParser
from serving.predict import SERVING_ERRORS, NotReadyError

if TYPE_CHECKING:
    from pipelines.explain import Explainer, Explanation
    from serving.runtime import Runtime
    from serving.schemas import ApiSchemas

Background = Callable[[], "np.ndarray | None"]  # training rows in contract order, or None when unavailable
KEPT_EXPLAINERS = 4  # explainers kept per process (one per version explained recently)
QUEUE_RETRY_AFTER_S = 1

EXPLAIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **{k: v for k, v in PREDICT_ERRORS.items() if k != 409},
    404: documented("The pinned version is not loaded"),
    422: documented("Invalid body or routing header, or a batch (one row only), naming it"),
    503: documented(
        "No champion loaded yet, no scikit-learn Pipeline to explain, or MLOPS_EXPLAIN_QUEUE explanations already "
        "waiting in this process (nothing was computed)",
        retry_after=True,
    ),
}


class ExplainResponse(BaseModel):
    """Contributions that add up: ``base_value + sum(contributions) == output_value`` (and the same for
    ``by_input``), for ``class`` in the ``output`` space."""

    request_id: str
    model_name: str
    model_version: str
    arm: str
    strategy: str
    served_runtime: str = Field(description="What /v1/predict scores this version with: sklearn or onnx")
    explained_runtime: str = Field(description="Always sklearn: the version's verified Pipeline")
    explained_class: str = Field(alias="class", description="The predicted class, explained")
    probabilities: dict[str, float]
    method: str = Field(description="linear (exact), tree (SHAP TreeExplainer) or kernel (SHAP KernelExplainer)")
    output: str = Field(description="margin (logistic regression's logit) or probability")
    base_value: float
    output_value: float
    contributions: dict[str, float] = Field(description="Per model feature; derived features shown separately")
    by_input: dict[str, float] = Field(description="Per request field; each derived feature split equally")
    background_rows: int = Field(description="Training rows the kernel method compares with (0: not used)")


class ExplainApi:
    """The /v1/explain route over ``runtime``; explainers are built once per version and kept."""

    def __init__(
        self, runtime: Runtime, contract: RequestContract, schemas: ApiSchemas, model_name: str, background: Background
    ) -> None:
        self.runtime, self.model_name, self.background = runtime, model_name, background
        self.parser = BodyParser(contract, schemas)
        body = one_row_body(self.parser.openapi_body()[0])  # its components are added by the native API
        self._explainers: dict[str, Explainer] = {}
        self._lock = threading.Lock()  # builds explainers
        self._explaining = threading.Lock()  # runs them
        self.queue_limit = runtime.settings.explain_queue
        self._admitted = 0  # requests past admission whose explanation has not returned (waiting or running)
        self._running = 0  # of them, the one holding `_explaining` (0 or 1)
        self._admission = threading.Lock()  # guards both counts
        self.router = APIRouter()
        self.router.add_api_route(
            "/v1/explain",
            self.explain,
            methods=["POST"],
            response_model=ExplainResponse,
            responses=EXPLAIN_ERRORS,
            tags=["native"],
            openapi_extra={"requestBody": body, "parameters": headers.openapi_parameters()},
        )

    async def explain(
        self,
        request: Request,
        version: str | None = Query(default=None, description="Explain this loaded version instead of routing"),
    ) -> Response:
        """Per-feature contributions for one row's prediction, with the base value they add up from."""
        raw = header_values(request.scope, PREDICT_HEADERS)
        if not is_json(raw.get(b"content-type")):
            problem = Problem("Content-Type", f"send application/json; got {raw.get(b'content-type')}", "content_type")
            return error_response(415, f"unsupported media type: {problem.msg}", [problem])
        try:
            routing = headers.routing_headers(raw)
            headers.authorize_override(routing, self.runtime.gate, client_key(request.scope))
            body = await request.body()
            if _is_batch(body):
                problem = Problem("rows", "explain takes one row as flat feature fields, not a batch", "one_row_only")
                return invalid_request([problem])
            values = self.parser.parse(body)
            decision, loaded = self.runtime.predictor().decide(
                routing.request_id, routing.user_id, routing.force_arm, version
            )
        except headers.HeaderError as err:
            return invalid_request(err.problems)
        except CredentialError as err:
            return credential_error(err, "X-Force-Arm")
        except RequestValidationError as err:
            return invalid_request(validation_problems(err.errors()))
        except SERVING_ERRORS as err:
            return serving_error(err)
        pipeline = explainable_pipeline(loaded.model)
        if pipeline is None:
            return serving_error(NotReadyError(f"version {loaded.version} has no scikit-learn Pipeline to explain"))
        if not self._admit():
            return self._queue_full()
        try:  # left here, not in the thread: a request cancelled before its thread started leaves the queue too
            explainer, explanation = await run_in_threadpool(self._explain, loaded.version, pipeline, values)
        finally:
            with self._admission:
                self._admitted -= 1
        probabilities = pipeline.predict_proba(values)[0]
        request.state.access = {"request_id": routing.request_id, "arm": decision.arm, "version": loaded.version}
        answer = {
            "request_id": routing.request_id,
            "model_name": self.model_name,
            "model_version": loaded.version,
            "arm": decision.arm,
            "strategy": decision.strategy,
            "served_runtime": loaded.runtime,
            "explained_runtime": "sklearn",
            "class": explanation.explained_class,
            "probabilities": dict(zip(explainer.classes, map(float, probabilities), strict=True)),
            "method": explanation.method,
            "output": explanation.output,
            "base_value": explanation.base_value,
            "output_value": explanation.output_value,
            "contributions": explanation.contributions,
            "by_input": explanation.by_input,
            "background_rows": explainer.background_size,
        }
        return JSONResponse(answer, headers={"X-Request-Id": routing.request_id})

    @property
    def waiting(self) -> int:
        """Explanations admitted that do not run yet: at most ``queue_limit``."""
        return self._admitted - self._running

    def _admit(self) -> bool:
        """Take a place in the queue, or False when ``queue_limit`` explanations wait already."""
        with self._admission:
            if self._admitted - self._running >= self.queue_limit:
                return False
            self._admitted += 1
            return True

    def _queue_full(self) -> Response:
        message = (
            f"the explanation queue of this process is full ({self.queue_limit} waiting while one runs, "
            f"MLOPS_EXPLAIN_QUEUE); nothing was computed, retry after {QUEUE_RETRY_AFTER_S} s"
        )
        problem = Problem("explain", message, "explain_queue_full")
        return error_response(503, message, [problem], {"Retry-After": str(QUEUE_RETRY_AFTER_S)})

    def _explain(self, version: str, pipeline: Any, values: np.ndarray) -> tuple[Explainer, Explanation]:
        """One explanation at a time (SHAP's explainers keep per-call state); it stops waiting when it runs."""
        explainer = self._explainer(version, pipeline)
        with self._explaining:
            with self._admission:
                self._running += 1
            try:
                return explainer, explainer.explain(values)[0]
            finally:
                with self._admission:
                    self._running -= 1

    def _explainer(self, version: str, pipeline: Any) -> Explainer:
        """The version's explainer, built on first use (SHAP's import and a background sample take seconds)."""
        from pipelines.explain import Explainer

        with self._lock:
            held = self._explainers.get(version)
            if held is not None and held.pipeline is pipeline:
                return held
            seed = self.runtime.params.train.seed
            explainer = Explainer(pipeline, self.background(), seed=seed)
            if len(self._explainers) >= KEPT_EXPLAINERS:
                self._explainers.pop(next(iter(self._explainers)))
            self._explainers[version] = explainer
            return explainer


def one_row_body(predict_body: dict[str, Any]) -> dict[str, Any]:
    """/v1/predict's documented request body narrowed to its one-row form (a flat object of feature fields)."""
    schema = predict_body["content"]["application/json"]["schema"]
    row = schema["oneOf"][0] if "oneOf" in schema else schema
    return {**predict_body, "content": {"application/json": {"schema": row}}}


def _is_batch(body: bytes) -> bool:
    """A ``{"rows": [...]}`` body (the parser reads it as rows, so it is told apart here)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False  # the parser answers malformed JSON with its own 422
    return isinstance(parsed, dict) and "rows" in parsed


def dataset_background(path: Any, features: list[str]) -> Background:
    """Training rows read from the dataset file on first use; None when the file is not there (the kernel
    method then compares with the training mean)."""

    def read() -> np.ndarray | None:
        from pipelines.data import read_csv

        if not path.exists():
            return None
        return read_csv(path)[features].to_numpy(dtype="float64")

    return read
