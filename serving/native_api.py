"""The native API: /v1/predict and /v1/feedback, and the health and metrics routes.

Concepts: REST serving (C18), batch endpoint (C20), feedback loop (C38). ``/v1/predict`` answers one
row (a flat object of feature fields) or a batch (``{"rows": [...]}``) with the same shape:
``predictions`` is always a list, one item per row, each with the ``id`` to send feedback for that row.
The routing headers (``X-Request-Id``, ``X-User-Id``, ``X-Force-Arm``) follow `serving.headers`, as on
every protocol. Each answer carries a feedback token (``feedback_token`` and the ``X-Feedback-Token``
header, `serving.credentials.FeedbackSigner`); ``/v1/feedback`` needs it back in ``X-Feedback-Token``
(or the admin token, for labelling pipelines): 401 without, 403 wrong. Bodies are read by
`serving.native_body` (a fast path for valid bodies, the typed schema's 422 for the rest) and answered
with orjson; ``POST /v1/predict`` is a raw ASGI handler that `serving.hot_routes.HotRoutes` calls
before FastAPI's router, with the same answers, errors and
OpenAPI document. The served rows are in the prediction log's queue before the answer leaves (a 503
otherwise); the shadow model runs after the response is sent.

Scoring a small request is less CPU than a threadpool hop, so predict is ``async`` (big batches go to
the threadpool inside `serving.runtime.Runtime.serve`); feedback waits on the database, so it is a
plain ``def`` and runs on the threadpool.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from serving import headers
from serving.contract import Problem, RequestContract
from serving.credentials import FEEDBACK_HEADER, CredentialError, bearer_token, check_feedback
from serving.entity_features import EntityError, EntityRequest
from serving.errors import documented, error_response, invalid_request, validation_problems
from serving.hot_routes import AsgiEndpoint, header_values, read_body, send_json
from serving.limits import client_key
from serving.log_schema import FeedbackBusyError
from serving.native_body import BodyParser
from serving.predict import SERVING_ERRORS, Served, http_status
from serving.schemas import ApiSchemas, FeedbackResponse, PredictResponse, Readiness
from serving.slow_clients import WORKER_TASKS

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from serving.metrics import Metrics
    from serving.runtime import Runtime

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    429: documented("Too many failed authentications from this client", retry_after=True),
}
PREDICT_ERRORS: dict[int | str, dict[str, Any]] = {
    401: documented("X-Force-Arm without Authorization: Bearer <MLOPS_ADMIN_TOKEN>"),
    403: documented("X-Force-Arm with a wrong admin token"),
    409: documented("X-Request-Id already used for other features"),
    415: documented("Content-Type is not application/json"),
    404: documented(
        "A row's entity id is not in the online feature store, or the service has no feature store (the field and "
        "id are named)"
    ),
    422: documented(
        "Invalid body or routing header (or an X-Force-Arm arm with no model loaded), naming it; for entity rows "
        "also features measured longer ago than MLOPS_FEATURE_MAX_AGE_S or stored values outside the data contract"
    ),
    503: documented(
        "No champion loaded yet, the prediction log is saturated or the database is down (nothing was served)",
        retry_after=True,
    ),
    **AUTH_ERRORS,
}
FEEDBACK_ERRORS: dict[int | str, dict[str, Any]] = {
    401: documented("Neither X-Feedback-Token nor an admin token"),
    403: documented("Wrong feedback token (or admin token) for this request id"),
    404: documented("No prediction was served under this id", FeedbackResponse),
    409: documented("A different label was already recorded for this id (write-once)", FeedbackResponse),
    422: documented("Invalid body, naming the field"),
    503: documented("The database is unavailable or busy; nothing was stored", retry_after=True),
    **AUTH_ERRORS,
}
FEEDBACK_PARAMETERS = [
    {"name": FEEDBACK_HEADER.lower(), "in": "header", "required": False,
     "description": "The feedback token the prediction was answered with; not needed with "
                    "Authorization: Bearer <MLOPS_ADMIN_TOKEN> (labelling pipelines).",
     "schema": {"type": "string"}},
]  # fmt: skip
TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}
PREDICT_HEADERS = frozenset((b"content-type", *headers.NAMES))


def is_json(content_type: str | None) -> bool:
    """``application/json``, optionally with ``charset=utf-8`` (what every JSON client sends)."""
    mime, _, options = (content_type or "").partition(";")
    return mime.strip().lower() == "application/json" and options.strip().lower() in ("", "charset=utf-8")


FEEDBACK_STATUS = {"recorded": 200, "duplicate": 200, "conflict": 409, "unknown_request": 404}


class NativeApi:
    """The native routes over ``runtime``; ``predict_asgi`` is /v1/predict's hot-path handler."""

    def __init__(
        self, runtime: Runtime, contract: RequestContract, schemas: ApiSchemas, metrics: Metrics, model_name: str
    ) -> None:
        self.runtime, self.metrics, self.model_name = runtime, metrics, model_name
        self.parser = BodyParser(contract, schemas)
        predict_body, self.components = self.parser.openapi_body()  # components: added to the OpenAPI document
        r = self.router = APIRouter()
        r.add_api_route(
            "/v1/predict",
            self.predict,
            methods=["POST"],
            response_model=PredictResponse,
            responses=PREDICT_ERRORS,
            tags=["native"],
            openapi_extra={"requestBody": predict_body, "parameters": headers.openapi_parameters()},
        )
        r.add_api_route(
            "/v1/feedback",
            with_body_type(self.feedback, schemas.feedback),
            methods=["POST"],
            response_model=FeedbackResponse,
            responses=FEEDBACK_ERRORS,
            tags=["native"],
            openapi_extra={"parameters": FEEDBACK_PARAMETERS},
        )
        r.add_api_route("/healthz", self.healthz, methods=["GET"], tags=["health"])
        r.add_api_route(
            "/readyz",
            self.readyz,
            methods=["GET"],
            tags=["health"],
            response_model=Readiness,
            responses={503: documented("Not ready: no champion loaded (the same report)", Readiness)},
        )
        r.add_api_route(
            "/metrics",
            self.prometheus_metrics,
            methods=["GET"],
            tags=["health"],
            response_class=Response,
            responses={200: {"description": "Prometheus text exposition format", **TEXT}},
        )

    async def predict(self, request: Request) -> Response:
        """Predict one row (a flat object of feature fields) or a batch (``{"rows": [...]}``)."""
        return AsgiEndpoint(self.predict_asgi)  # reached only off the hot path (e.g. under a root_path)

    async def predict_asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """/v1/predict as raw ASGI (`serving.hot_routes`): same answers, no Request/Response objects."""
        raw = header_values(scope, PREDICT_HEADERS)
        if not is_json(raw.get(b"content-type")):
            # A form or text/plain POST is what another site's page can send without asking: refused unread.
            got = raw.get(b"content-type") or "no Content-Type"
            problem = Problem("Content-Type", f"send application/json; got {got}", "content_type")
            await error_response(415, f"unsupported media type: {problem.msg}", [problem])(scope, receive, send)
            return
        try:
            routing = headers.routing_headers(raw)
            headers.authorize_override(routing, self.runtime.gate, client_key(scope))
            parsed = self.parser.parse_predict(await read_body(receive))  # 422 naming the field
            if isinstance(parsed, EntityRequest):  # rows sent as entity ids: their features from the feature store
                values, entities = await self.runtime.entity_rows(parsed)
                groups = None
            else:
                (values, groups), entities = parsed, None
            served = await self.runtime.serve(
                values, routing.request_id, user_id=routing.user_id, override=routing.force_arm,
                client_id=routing.client_id, in_flight=scope.get(WORKER_TASKS), groups=groups, entities=entities,
            )  # fmt: skip
        except headers.HeaderError as err:
            await invalid_request(err.problems)(scope, receive, send)
            return
        except CredentialError as err:
            await credential_error(err, "X-Force-Arm")(scope, receive, send)
            return
        except RequestValidationError as err:
            await invalid_request(validation_problems(err.errors()))(scope, receive, send)
            return
        except EntityError as err:
            await entity_error(err)(scope, receive, send)
            return
        except SERVING_ERRORS as err:
            await serving_error(err)(scope, receive, send)
            return
        rid, token = routing.request_id, self.runtime.signer.token(routing.request_id)
        scope.setdefault("state", {})["access"] = {"request_id": rid, "arm": served.decision.arm,
                                                   "version": served.model.version}  # fmt: skip
        extra = ((b"x-request-id", rid.encode("latin-1")), (b"x-feedback-token", token.encode("latin-1")))
        await send_json(send, predict_payload(served, self.model_name, token), extra)
        if served.decision.shadow_alias:  # after the answer, as a BackgroundTask would run it
            await run_in_threadpool(self.runtime.after_response, served, values)

    def feedback(self, body: Any, request: Request) -> Response:
        """Ground truth for a served row: 200 recorded or duplicate, 409 different label, 404 unknown id.

        Needs the ``X-Feedback-Token`` of the prediction's answer, or ``Authorization: Bearer
        <MLOPS_ADMIN_TOKEN>`` (a labelling pipeline): 401 without either, 403 wrong.
        """
        try:
            check_feedback(
                self.runtime.gate,
                self.runtime.signer,
                client_key(request.scope),
                body.request_id,
                request.headers.get(FEEDBACK_HEADER),
                bearer_token(request.headers.get("authorization")),
            )
        except CredentialError as err:
            return credential_error(err, err.field)
        try:
            result = self.runtime.record_feedback(body.request_id, body.label)
        except SERVING_ERRORS as err:
            return serving_error(err)
        answer = {"request_id": result.request_id, "label": result.label, "status": result.status.value}
        return JSONResponse({**answer, "message": result.message}, status_code=FEEDBACK_STATUS[result.status.value])

    async def healthz(self) -> dict[str, str]:
        """Liveness: the process answers (models may still be loading)."""
        return {"status": "alive"}

    async def readyz(self) -> Response:
        """Readiness: 200 once a champion is loaded; versions, degraded flag and last registry error."""
        report = self.runtime.readiness()
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    async def prometheus_metrics(self) -> Response:
        """Prometheus exposition of this process's counters."""
        body, content_type = self.metrics.render()
        return Response(body, media_type=content_type)


def predict_payload(served: Served, model_name: str, feedback_token: str) -> bytes:
    """The /v1/predict answer as JSON bytes (orjson keeps a 10,000-row answer cheap)."""
    classes = served.scored.classes
    probabilities = served.scored.probabilities.tolist() if served.scored.probabilities is not None else []
    predictions = [
        {"id": rid, "class": label, "probabilities": dict(zip(classes, row, strict=True))}
        for rid, label, row in zip(served.row_ids, served.scored.labels, probabilities, strict=True)
    ]
    if served.entities is not None:  # rows sent as entity ids: which one, and how fresh its features were
        for prediction, entity, measured in zip(
            predictions, served.entities.ids, served.entities.measured_at, strict=True
        ):
            prediction["entity_id"], prediction["features_measured_at"] = entity, measured.isoformat()
    return orjson.dumps(
        {
            "request_id": served.request_id,
            "predictions": predictions,
            "model_name": model_name,
            "model_version": served.model.version,
            "arm": served.decision.arm,
            "strategy": served.decision.strategy,
            "feedback_token": feedback_token,
        }
    )


def serving_error(err: Exception) -> Response:
    """A serving error in the native error body; a refused ``X-Force-Arm`` names the header like any field."""
    status = http_status(err)
    retry = {"Retry-After": "1"} if isinstance(err, FeedbackBusyError) else None
    field = {422: "X-Force-Arm", 409: "X-Request-Id"}.get(status)
    return error_response(status, str(err), [Problem(field, str(err))] if field else [], retry)


def entity_error(err: EntityError) -> Response:
    """A refused body of entity rows: 404 unknown id or no store, 422 stale or out-of-contract features."""
    p = err.problem
    if err.status == 422:
        return invalid_request([p])
    return error_response(err.status, f"{p.field}: {p.msg}", [p])


def credential_error(err: CredentialError, field: str) -> Response:
    """A refused credential (401 / 403 / 429) in the native error body, naming the header it was for."""
    return error_response(err.status, str(err), [Problem(field, str(err), "credentials")], err.headers)


def with_body_type(
    endpoint: Callable[[Any, Request], Response], model: type[BaseModel]
) -> Callable[[Any, Request], Response]:
    """``endpoint`` with its parameters ``body``, typed as ``model`` for FastAPI to validate and document, and
    ``request``.

    The request models are built at run time from the contract (`serving.schemas`), so they cannot be
    written in the method's annotation; FastAPI reads the signature set here instead.
    """

    def call(body: Any, request: Request) -> Response:
        return endpoint(body, request)

    call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=model),
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        ],
        return_annotation=Response,
    )
    call.__name__, call.__doc__ = endpoint.__name__, endpoint.__doc__
    return call
