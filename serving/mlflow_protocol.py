"""MLflow's scoring protocol (`POST /invocations`), so MLflow clients and tooling work unchanged.

Concept: standard serving protocols (C19). ``mlflow models serve`` defines the wire format many
tools speak: a JSON body with exactly one of ``dataframe_split``, ``dataframe_records``,
``instances`` or ``inputs`` (``params`` allowed beside it), or a CSV body; the answer is
``{"predictions": [...]}`` -- for a classifier the class labels, exactly what ``mlflow.pyfunc``
returns, because both call the same Pipeline's ``predict``. Client errors are 400 with MLflow's
body ``{"error_code": "BAD_REQUEST" | "INVALID_PARAMETER_VALUE", "message": ...}``: BAD_REQUEST for
a body that is not the protocol (malformed JSON, no or two format keys, unparsable CSV),
INVALID_PARAMETER_VALUE for data that does not fit the model (missing column, non-numeric value,
missing value, too many rows). Unlike the reference server, a missing or unsupported Content-Type
is a 415 (it answers 500), messages name the column instead of dumping the schema, and an alias
move is picked up without a restart. Beyond MLflow's columns and types, the data contract's value
ranges apply, as on every protocol here (a 400 naming the column). Extra columns are ignored.

Plainly valid ``dataframe_split`` and ``dataframe_records`` bodies (the ones MLflow's own client
sends) skip pandas: `serving.fast_input.ContractMatrix` reads them in one pass; everything else,
including every invalid body, goes through `parse_json` / `check_frame`, which name the problem.

Requests are routed and logged like /v1/predict, with the same routing headers (`serving.headers`); a
bad one is a 400 INVALID_PARAMETER_VALUE naming it, a forced arm without the admin token 401
UNAUTHENTICATED / 403 PERMISSION_DENIED (429 REQUEST_LIMIT_EXCEEDED after too many failures), a reused
``X-Request-Id`` with other rows 409 RESOURCE_ALREADY_EXISTS. The served version, arm, request id and
feedback token are returned in ``X-Model-Version``, ``X-Arm``, ``X-Request-Id`` and ``X-Feedback-Token``.

The OpenAPI document declares the body (`request_body`), built from the data contract: each JSON shape
with the contract's columns, ranges and row limit, and CSV as a pattern. Where a rule spans fields (a
``dataframe_split`` row as wide as its ``columns``, columnar ``inputs`` of equal lengths), the document
describes the strict form -- columns in contract order, ``inputs`` as one row -- so every request it
allows is accepted; the server accepts more (other column orders, extra columns, which it ignores,
columnar ``inputs``), as MLflow clients send them.
"""

from __future__ import annotations

import io
import json
import math
import re
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from serving import headers
from serving.contract import Problem, RequestContract
from serving.credentials import CredentialError
from serving.errors import ErrorDetail, credential_problem, documented, error_body
from serving.fast_input import ContractMatrix
from serving.hot_routes import AsgiEndpoint, header_values, read_body, send_json
from serving.limits import client_key
from serving.predict import SERVING_ERRORS, NotReadyError, http_status
from serving.slow_clients import WORKER_TASKS

if TYPE_CHECKING:
    from collections.abc import Iterable

    from starlette.types import Receive, Scope, Send

    from serving.runtime import Runtime

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
BAD_REQUEST, INVALID = "BAD_REQUEST", "INVALID_PARAMETER_VALUE"
CREDENTIAL_CODES = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "REQUEST_LIMIT_EXCEEDED"}
SERVING_CODES = {503: "TEMPORARILY_UNAVAILABLE", 500: "INTERNAL_ERROR", 409: "RESOURCE_ALREADY_EXISTS"}
INVOCATION_HEADERS = frozenset((b"content-type", *headers.NAMES))


class ProtocolError(ValueError):
    """A request the protocol rejects; carries MLflow's error code and the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.status = code, status


def parse_json(body: bytes) -> pd.DataFrame:
    """The DataFrame in an MLflow JSON body (before column and type checks)."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ProtocolError(BAD_REQUEST, f"malformed JSON: {err}") from err
    except RecursionError as err:  # [[[[...]]]]: the parser's stack, not a server fault
        raise ProtocolError(BAD_REQUEST, "malformed JSON: nested too deeply") from err
    keys = [k for k in FORMATS if isinstance(payload, dict) and k in payload]
    if len(keys) != 1:
        got = list(payload) if isinstance(payload, dict) else type(payload).__name__
        raise ProtocolError(BAD_REQUEST, f"the body must have exactly one of {', '.join(FORMATS)}; got {got}")
    data = payload[keys[0]]
    try:
        if keys[0] == "dataframe_split":
            if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
                raise ProtocolError(BAD_REQUEST, 'dataframe_split needs {"columns": [...], "data": [[...], ...]}')
            return pd.DataFrame(data.get("data"), columns=data["columns"])
        if isinstance(data, dict):  # columnar {"col": [values]} or one row {"col": value}
            scalar = all(not isinstance(v, list | dict) for v in data.values())
            return pd.DataFrame([data] if scalar else data)
        if isinstance(data, list) and all(isinstance(r, dict) for r in data):
            return pd.DataFrame.from_records(data)
    except (ValueError, TypeError) as err:  # ragged lists, shape mismatches
        raise ProtocolError(BAD_REQUEST, f"{keys[0]} does not form a table: {err}") from err
    raise ProtocolError(
        BAD_REQUEST, f"{keys[0]} must be a list of records or an object of columns: this model has named columns"
    )


def parse_csv(body: bytes) -> pd.DataFrame:
    try:
        return pd.read_csv(io.BytesIO(body))
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as err:  # EmptyDataError is a ValueError
        raise ProtocolError(BAD_REQUEST, f"malformed CSV: {err}") from err


def _numeric(col: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(col):
        return False
    if pd.api.types.is_numeric_dtype(col):
        return True
    return all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in col)


def check_frame(frame: pd.DataFrame, contract: RequestContract) -> np.ndarray:
    """The model's columns in contract order as a float64 matrix, or INVALID_PARAMETER_VALUE naming the problem."""
    if not 1 <= len(frame) <= contract.max_rows:
        raise ProtocolError(INVALID, f"send between 1 and {contract.max_rows} rows, got {len(frame)}")
    features = list(contract.features)
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ProtocolError(INVALID, f"missing column(s) {missing}; the model needs {features}")
    for name in features:
        if not _numeric(frame[name]):
            bad = next(v for v in frame[name] if not isinstance(v, int | float) or isinstance(v, bool))
            raise ProtocolError(INVALID, f"column {name!r} must hold numbers; got {bad!r} ({type(bad).__name__})")
    values = frame[features].to_numpy(dtype="float64")
    if problem := contract.problem(values):
        raise ProtocolError(INVALID, problem.msg)
    return values


def fast_values(body: bytes, matrix: ContractMatrix) -> np.ndarray | None:
    """The matrix of a plainly valid dataframe_split / dataframe_records body, else None."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(payload) is not dict or len(payload.keys() - {"params"}) != 1:
        return None
    if type(split := payload.get("dataframe_split")) is dict and split.keys() <= {"columns", "data", "index"}:
        return matrix.split(split.get("columns"), split.get("data"))
    if "dataframe_records" in payload:
        return matrix.records(payload["dataframe_records"], exact=False)
    return None


class MlflowError(BaseModel):
    """MLflow's error body, with the project's ``error`` and ``detail`` beside it (the same line)."""

    error_code: str
    message: str
    error: str
    detail: list[ErrorDetail] = []


class MlflowPredictions(BaseModel):
    """MLflow's answer: one class label per row."""

    predictions: list[str]


INVOCATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": {h: {"description": d, "schema": {"type": "string"}} for h, d in (
        ("X-Request-Id", "The id the prediction is logged under."), ("X-Model-Version", "The version that answered."),
        ("X-Arm", "The routing arm that answered."),
        ("X-Feedback-Token", "The token /v1/feedback needs to label this answer."))}},
    400: documented("BAD_REQUEST (not the protocol) or INVALID_PARAMETER_VALUE (data, header), naming it", MlflowError),
    401: documented("UNAUTHENTICATED: X-Force-Arm without the admin token", MlflowError),
    403: documented("PERMISSION_DENIED: X-Force-Arm with a wrong admin token", MlflowError),
    409: documented("RESOURCE_ALREADY_EXISTS: X-Request-Id already used for other rows", MlflowError),
    415: documented("Content-Type is neither application/json nor text/csv (UTF-8)", MlflowError),
    429: documented("REQUEST_LIMIT_EXCEEDED: too many failed authentications", MlflowError, retry_after=True),
    503: documented("TEMPORARILY_UNAVAILABLE: no champion loaded, or the prediction log is saturated", MlflowError),
}  # fmt: skip
PLAIN = {"content": {"text/plain": {"schema": {"type": "string"}}}}


def _number_pattern(low: float, high: float) -> str:
    """A regex for decimal numbers inside [low, high]: whole part in range, any decimals (or ``low`` itself)."""
    wholes = range(math.ceil(low), math.floor(high))
    if not wholes or len(wholes) > 100:
        return re.escape(repr(low))
    return "(?:" + "|".join(str(w) for w in wholes) + r")(?:\.[0-9]{1,3})?"


def request_body(contract: RequestContract) -> dict[str, Any]:
    """The OpenAPI request body of /invocations: MLflow's four JSON shapes and CSV, over the contract."""
    features, ranges = list(contract.features), contract.ranges
    number = {f: {"type": "number", "minimum": lo, "maximum": hi} for f, (lo, hi) in ranges.items()}
    if contract.allow_missing:
        number = {f: {"anyOf": [n, {"type": "null"}]} for f, n in number.items()}
    row = {"type": "object", "properties": number, "required": features}
    rows = {"type": "array", "items": row, "minItems": 1, "maxItems": contract.max_rows}
    split = {
        "type": "object",
        "properties": {
            "columns": {"type": "array", "prefixItems": [{"const": f} for f in features],
                        "minItems": len(features), "maxItems": len(features)},
            "data": {"type": "array", "minItems": 1, "maxItems": contract.max_rows,
                     "items": {"type": "array", "prefixItems": list(number.values()),
                               "minItems": len(features), "maxItems": len(features)}},
        },
        "required": ["columns", "data"],
    }  # fmt: skip
    scalar = {"type": ["string", "number", "boolean", "null"]}  # an extra column is ignored, but must be a scalar
    one_row = row | {"additionalProperties": scalar}
    shapes = {"dataframe_split": split, "dataframe_records": rows, "instances": rows, "inputs": one_row}
    body = {
        "oneOf": [
            {"type": "object", "properties": {k: v, "params": {"type": "object"}}, "required": [k], "title": k}
            for k, v in shapes.items()
        ]
    }
    middle = {f: (lo + hi) / 2 for f, (lo, hi) in ranges.items()}
    cells = ",".join(_number_pattern(lo, hi) for lo, hi in ranges.values())
    csv = {"type": "string", "pattern": f"^{','.join(features)}\n(?:{cells}\n){{1,100}}$"}
    csv_example = ",".join(features) + "\n" + ",".join(str(v) for v in middle.values()) + "\n"
    return {
        "required": True,
        "content": {
            "application/json": {"schema": body, "example": {"dataframe_records": [middle]}},
            "text/csv": {"schema": csv, "example": csv_example},
        },
    }


def _mlflow_error(code: str, message: str, status: int = 400, problems: Iterable[Problem] = ()) -> JSONResponse:
    """MLflow's ``error_code`` and ``message``, plus the project's ``error`` and ``detail`` (`serving.errors`)."""
    body = {"error_code": code, "message": message} | error_body(message, problems)
    return JSONResponse(body, status_code=status)


class MlflowProtocol:
    """The /invocations, /ping, /health and /version routes over ``runtime``; /invocations is a hot route."""

    def __init__(self, runtime: Runtime, contract: RequestContract) -> None:
        self.runtime, self.contract, self.matrix = runtime, contract, ContractMatrix(contract)
        self.router = APIRouter(tags=["mlflow"])
        self.router.add_api_route(
            "/invocations",
            self.invocations,
            methods=["POST"],
            response_model=MlflowPredictions,
            responses=INVOCATION_RESPONSES,
            openapi_extra={"parameters": headers.openapi_parameters(), "requestBody": request_body(contract)},
        )
        for path in ("/ping", "/health"):
            self.router.add_api_route(
                path,
                self.ping,
                methods=["GET"],
                response_class=PlainTextResponse,
                responses={200: PLAIN, 503: {"description": "No champion loaded yet", **PLAIN}},
            )
        self.router.add_api_route(
            "/version", self.version, methods=["GET"], response_class=PlainTextResponse, responses={200: PLAIN}
        )

    async def invocations(self, request: Request) -> Response:
        """MLflow scoring protocol: JSON (dataframe_split | dataframe_records | instances | inputs) or CSV."""
        return AsgiEndpoint(self.invocations_asgi)  # reached only off the hot path (e.g. under a root_path)

    async def invocations_asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """/invocations as raw ASGI (`serving.hot_routes`): same answers, no Request/Response objects."""
        raw = header_values(scope, INVOCATION_HEADERS)
        mime, _, options = (raw.get(b"content-type") or "").partition(";")
        mime, charset = mime.strip().lower(), options.strip().lower()
        if mime not in ("application/json", "text/csv") or charset not in ("", "charset=utf-8"):
            got = raw.get(b"content-type") or "no Content-Type"
            await _mlflow_error(BAD_REQUEST, f"send application/json or text/csv (UTF-8); got {got}", 415)(
                scope, receive, send
            )
            return
        body = await read_body(receive)
        try:
            routing = headers.routing_headers(raw)
            headers.authorize_override(routing, self.runtime.gate, client_key(scope))
            values = self.values(body, mime)
            served = await self.runtime.serve(
                values, routing.request_id, user_id=routing.user_id, override=routing.force_arm, labels_only=True,
                client_id=routing.client_id, in_flight=scope.get(WORKER_TASKS),
            )  # fmt: skip
        except headers.HeaderError as err:
            await _mlflow_error(INVALID, str(err), problems=err.problems)(scope, receive, send)
            return
        except CredentialError as err:
            answer = _mlflow_error(CREDENTIAL_CODES[err.status], str(err), err.status, [credential_problem(err)])
            answer.headers.update(err.headers or {})
            await answer(scope, receive, send)
            return
        except ProtocolError as err:
            await _mlflow_error(err.code, str(err), err.status)(scope, receive, send)
            return
        except SERVING_ERRORS as err:
            status = http_status(err)
            code = SERVING_CODES.get(status, INVALID)
            await _mlflow_error(code, str(err), 400 if status == 422 else status)(scope, receive, send)
            return
        rid, version, arm = routing.request_id, served.model.version, served.decision.arm
        scope.setdefault("state", {})["access"] = {"request_id": rid, "arm": arm, "version": version}
        token = self.runtime.signer.token(rid)
        extra = ((b"x-request-id", rid.encode("latin-1")), (b"x-model-version", version.encode("latin-1")),
                 (b"x-arm", arm.encode("latin-1")), (b"x-feedback-token", token.encode("latin-1")))  # fmt: skip
        await send_json(send, orjson.dumps({"predictions": served.scored.labels}), extra)
        if served.decision.shadow_alias:  # after the answer, as a BackgroundTask would run it
            await run_in_threadpool(self.runtime.after_response, served, values)

    def values(self, body: bytes, mime: str) -> np.ndarray:
        """The body's rows as a float matrix: a plainly valid JSON body in one pass, anything else precisely."""
        values = fast_values(body, self.matrix) if mime == "application/json" else None
        if values is None:  # not plainly valid (or CSV): the precise path, whose errors name the problem
            return check_frame(parse_json(body) if mime == "application/json" else parse_csv(body), self.contract)
        return values

    async def ping(self) -> Response:
        """200 once a champion is loaded (as ``mlflow models serve``), else 503."""
        try:
            ready = "champion" in self.runtime.predictor().cache.snapshot()
        except NotReadyError:
            ready = False
        return PlainTextResponse("\n" if ready else "no model loaded\n", status_code=200 if ready else 503)

    async def version(self) -> Response:
        """The MLflow version whose protocol this implements (what the reference server answers)."""
        return PlainTextResponse(package_version("mlflow"))
