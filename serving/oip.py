"""Open Inference Protocol V2 (KServe / Triton / Seldon MLServer), usable by ``tritonclient``.

Concept: standard serving protocols (C19). The V2 protocol is what Kubernetes model servers speak,
so clients, load generators and gateways built for them work against this service too:
server and model health, model metadata, and ``infer`` with typed tensors. The model takes one
input tensor ``[n, n_features]`` (FP32 or FP64, features in the contract's column order) and returns
two outputs: ``label`` (BYTES, ``[n]``) and ``probabilities`` (FP64, ``[n, n_classes]``, the model's
class order, also named in that output's ``parameters.classes``). The request ``id`` is echoed.

What `parse_infer` and `binary_outputs` check (each refusal a 400 naming the field): the body is an
InferenceRequest with exactly one input; its datatype is FP32 or FP64; its shape is ``[n, n_features]``
with n >= 1; its values are numbers, as JSON ``data`` (row-major flat or nested) or as raw bytes; their
count is n x n_features; the outputs asked for exist; ``binary_data_output`` / ``binary_data`` are booleans;
and no output asks for ``classification`` (Triton's top-k extension, not implemented: refused, not ignored).

Binary tensor data extension (listed in ``GET /v2`` as ``binary_tensor_data``), both ways, as Triton
lays it out: the JSON comes first, its length in the ``Inference-Header-Content-Length`` header, then
the tensors' raw little-endian bytes in order. *Inputs*: a tensor with ``parameters.binary_data_size``
is read from the bytes after the JSON (a whole number of values, all present). *Outputs*: a request's
``parameters.binary_data_output: true`` asks for every output as bytes, an output's own
``parameters.binary_data`` overrides that; each such output then has ``parameters.binary_data_size``
instead of ``data`` (BYTES elements as a 4-byte length and the UTF-8 text) and the answer is
``application/octet-stream``. ``tritonclient`` asks for binary outputs by default, so its ``as_numpy``
gives the labels as ``bytes``, as it does from Triton.

The model name is the registry name; its versions are the ones currently loaded behind aliases.
``/v2/models/{name}/infer`` is routed like /v1/predict (canary, A/B, ...) with the same routing headers
(`serving.headers`; without ``X-Request-Id`` the body's ``id`` is the request id when it is a valid
one); ``.../versions/{v}/infer`` pins that exact version. The tensor's values must meet the data
contract like every protocol's (`serving.contract.RequestContract.problem`: finite, in range, missing
only where allowed). Errors are the protocol's ``{"error": "..."}`` with the project's ``detail`` list
beside it (`serving.errors.error_body`, the fields at fault when known): 400 for an invalid request or
header, 401 / 403 for ``X-Force-Arm`` without the right admin token (429 after too many failures), 404
for an unknown model or version, 409 for a request id already used for other rows, 503 while no champion
is loaded. The answer's ``parameters`` and the ``X-Feedback-Token`` header carry the feedback token for
``/v1/feedback``; a version-pinned request is logged with strategy ``pinned``, which no analysis counts.

The OpenAPI document declares the InferenceRequest (`request_body`) from the data contract. The rule
that ties ``shape`` to the number of ``data`` values spans fields, so the document describes the strict
form every client can send -- one row, ``shape`` ``[1, n_features]``, JSON data in the contract's ranges
-- and every request it allows is accepted; the server accepts more (``[n, n_features]`` batches,
nested data, binary inputs), as the protocol allows.
"""

from __future__ import annotations

import itertools
import struct
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from serving import headers
from serving.contract import Problem, RequestContract
from serving.credentials import CredentialError
from serving.errors import ErrorDetail, credential_problem, documented, error_body, validation_problems
from serving.limits import client_key
from serving.predict import SERVING_ERRORS, NotReadyError, http_status
from serving.slow_clients import WORKER_TASKS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from serving.predict import Served
    from serving.runtime import Runtime

DTYPES = {"FP32": "<f4", "FP64": "<f8"}
OUTPUTS = ("label", "probabilities")
EXTENSIONS = ("binary_tensor_data",)  # the names Triton lists in its server metadata
BINARY_HEADER = "Inference-Header-Content-Length"  # where the JSON ends and the raw tensor bytes begin


class TensorIn(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any] | None = None
    parameters: dict[str, Any] = {}


class OutputRequest(BaseModel):
    name: str
    parameters: dict[str, Any] = {}


class InferRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] = {}
    inputs: list[TensorIn] = Field(min_length=1, max_length=1)
    outputs: list[OutputRequest] | None = None


class OipErrorBody(BaseModel):
    """The protocol's ``{"error"}``, with the project's ``detail`` beside it (the fields at fault, if any)."""

    error: str
    detail: list[ErrorDetail] = []


class ModelReadiness(BaseModel):
    name: str
    ready: bool


class ServerReadiness(BaseModel):
    ready: bool


class Liveness(BaseModel):
    live: bool


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class TensorOut(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any]
    parameters: dict[str, Any] = {}


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str
    parameters: dict[str, Any]
    outputs: list[TensorOut]


MODEL_ERRORS: dict[int | str, dict[str, Any]] = {
    404: documented("Unknown model, or no such version loaded", OipErrorBody),
    503: documented("No champion loaded yet", OipErrorBody),
}
INFER_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The InferenceResponse: JSON, or with binary outputs asked for, its JSON (the first "
        "Inference-Header-Content-Length bytes) followed by the raw tensor bytes",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            BINARY_HEADER: {
                "description": "Length of the JSON part (binary answers only)",
                "schema": {"type": "integer"},
            }
        },
    },
    400: documented("Invalid InferenceRequest, tensor values or routing header, naming it", OipErrorBody),
    401: documented("X-Force-Arm without Authorization: Bearer <MLOPS_ADMIN_TOKEN>", OipErrorBody),
    403: documented("X-Force-Arm with a wrong admin token", OipErrorBody),
    409: documented("X-Request-Id (or the body id) already used for other rows", OipErrorBody),
    429: documented("Too many failed authentications from this client", OipErrorBody, retry_after=True),
    **MODEL_ERRORS,
    503: documented("No champion loaded yet, or the prediction log is saturated", OipErrorBody),
}


def _orders_of_two_or_more() -> list[tuple[str, ...]]:
    """Every order of two or more distinct outputs (two outputs: two orders)."""
    return [order for k in range(2, len(OUTPUTS) + 1) for order in itertools.permutations(OUTPUTS, k)]


def _named_in_order(order: tuple[str, ...]) -> dict[str, Any]:
    """An outputs array whose items are exactly ``order``'s names, in that order."""
    items = [{"type": "object", "properties": {"name": {"const": name}}} for name in order]
    return {"prefixItems": items, "minItems": len(order), "maxItems": len(order)}


def request_body(contract: RequestContract) -> dict[str, Any]:
    """The OpenAPI request body of infer: one JSON tensor ``[1, n_features]`` in the contract's ranges."""
    n = len(contract.features)
    values = [{"type": "number", "minimum": lo, "maximum": hi} for lo, hi in contract.ranges.values()]
    tensor = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "prefixItems": [{"const": 1}, {"const": n}], "minItems": 2, "maxItems": 2},
            "datatype": {"enum": list(DTYPES)},
            "data": {"type": "array", "prefixItems": values, "minItems": n, "maxItems": n},
            # binary_data_size announces raw bytes after the JSON (the binary extension): not this JSON form
            "parameters": {"type": "object", "not": {"required": ["binary_data_size"]}},
        },
        "required": ["name", "shape", "datatype", "data"],
    }
    request = {
        "type": "object",
        "title": "InferenceRequest",
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object", "properties": {"binary_data_output": {"type": "boolean"}}},
            "inputs": {"type": "array", "items": tensor, "minItems": 1, "maxItems": 1},
            "outputs": {
                "type": "array",
                # Each output at most once (a name asked for twice is a 400): JSON Schema cannot compare items,
                # so the strict form lists the orders in which two or more distinct outputs may be asked for.
                "anyOf": [{"maxItems": 1}, *(_named_in_order(order) for order in _orders_of_two_or_more())],
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"enum": list(OUTPUTS)},
                        "parameters": {
                            "type": "object",
                            "properties": {"binary_data": {"type": "boolean"}},
                            "not": {"required": ["classification"]},
                        },
                    },
                    "required": ["name"],
                },
            },
        },
        "required": ["inputs"],
    }
    middle = [(lo + hi) / 2 for lo, hi in contract.ranges.values()]
    example = {"inputs": [{"name": "features", "shape": [1, n], "datatype": "FP64", "data": middle}]}
    return {"required": True, "content": {"application/json": {"schema": request, "example": example}}}


class OipError(ValueError):
    """A refused V2 request: the message, the HTTP status, and the fields at fault when they are known."""

    def __init__(self, message: str, status: int = 400, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.status, self.problems = status, list(problems)


def parse_infer(body: bytes, header_length: str | None, n_features: int) -> tuple[InferRequest, np.ndarray]:
    """Validate an infer body (JSON, or JSON header + binary tensor data): the request and an [n, F] array."""
    try:
        split = int(header_length) if header_length else len(body)
        request = InferRequest.model_validate_json(body[:split])
    except ValueError as err:  # ValidationError and a bad header length are both ValueErrors
        problems = validation_problems(err.errors()) if isinstance(err, ValidationError) else []
        message = "; ".join(f"{p.field}: {p.msg}" for p in problems) or f"header: {err}"
        raise OipError(f"invalid infer request: {message}", problems=problems) from err
    tensor = request.inputs[0]
    if tensor.datatype not in DTYPES:
        raise OipError(f"input {tensor.name!r}: datatype must be FP32 or FP64, got {tensor.datatype}")
    if len(tensor.shape) != 2 or tensor.shape[1] != n_features or tensor.shape[0] < 1:
        raise OipError(f"input {tensor.name!r}: shape must be [n, {n_features}] with n >= 1, got {tensor.shape}")
    size = tensor.parameters.get("binary_data_size")
    if size is not None:
        dtype = np.dtype(DTYPES[tensor.datatype])
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or size % dtype.itemsize:
            raise OipError(
                f"input {tensor.name!r}: parameters.binary_data_size must be a whole number of "
                f"{dtype.itemsize}-byte values, got {size!r}"
            )
        if split + size > len(body):
            raise OipError(f"input {tensor.name!r}: binary_data_size {size} exceeds the {len(body) - split} bytes sent")
        values = np.frombuffer(body[split : split + size], dtype=dtype)
    else:
        values = np.asarray(tensor.data if tensor.data is not None else [])
        if values.size and values.dtype.kind not in "fiu":
            raise OipError(f"input {tensor.name!r}: data must be numbers, got {values.dtype.kind!r} values")
    n = tensor.shape[0]
    if values.size != n * n_features:
        raise OipError(f"input {tensor.name!r}: shape {tensor.shape} needs {n * n_features} values, got {values.size}")
    matrix = values.astype("float64").reshape(n, n_features)
    unknown = [o.name for o in request.outputs or [] if o.name not in OUTPUTS]
    if unknown:
        raise OipError(f"unknown output(s) {unknown}; this model has {list(OUTPUTS)}")
    names = [o.name for o in request.outputs or []]
    if (twice := next((i for i, name in enumerate(names) if name in names[:i]), None)) is not None:
        problem = Problem(f"outputs.{twice}.name", f"{names[twice]!r} is asked for twice", "duplicate")
        raise OipError(f"{problem.field}: {problem.msg}; name each output once", problems=[problem])
    return request, matrix


def binary_outputs(request: InferRequest) -> frozenset[str]:
    """The outputs to send as raw bytes (the binary tensor data extension), checking the parameters that ask.

    ``parameters.binary_data_output`` (request) is the default for every output; an output's own
    ``parameters.binary_data`` overrides it. Both must be booleans. ``classification`` (Triton's top-k
    extension) is refused rather than ignored: this server does not implement it.
    """
    default = request.parameters.get("binary_data_output", False)
    if not isinstance(default, bool):
        problem = Problem("parameters.binary_data_output", f"must be true or false, got {default!r}", "bool_type")
        raise OipError(f"{problem.field} {problem.msg}", problems=[problem])
    wanted = [OutputRequest(name=name) for name in OUTPUTS] if request.outputs is None else request.outputs
    binary = set()
    for i, output in enumerate(wanted):
        field = f"outputs.{i}.parameters"
        if "classification" in output.parameters:
            problem = Problem(f"{field}.classification", "the classification extension is not supported", "unsupported")
            raise OipError(f"{problem.field}: {problem.msg}; ask for 'probabilities' instead", problems=[problem])
        flag = output.parameters.get("binary_data", default)
        if not isinstance(flag, bool):
            problem = Problem(f"{field}.binary_data", f"must be true or false, got {flag!r}", "bool_type")
            raise OipError(f"{problem.field} {problem.msg}", problems=[problem])
        if flag:
            binary.add(output.name)
    return frozenset(binary)


def tensor_bytes(output: dict[str, Any]) -> bytes:
    """An output tensor's data as the binary extension lays it out: row-major little-endian values, and for
    BYTES each element as a 4-byte little-endian length followed by its UTF-8 bytes."""
    if output["datatype"] == "BYTES":
        encoded = [str(v).encode() for v in output["data"]]
        return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    return np.asarray(output["data"], dtype=DTYPES[output["datatype"]]).tobytes()


def binary_answer(answer: dict[str, Any], binary: frozenset[str], headers: dict[str, str]) -> Response:
    """The InferenceResponse with the ``binary`` outputs moved after the JSON: each such output has
    ``parameters.binary_data_size`` instead of ``data``, its bytes follow in output order, and the
    ``Inference-Header-Content-Length`` header says where the JSON ends. Without binary outputs: plain JSON."""
    if not binary:
        return JSONResponse(answer, headers=headers)
    chunks = []
    for output in answer["outputs"]:
        if output["name"] in binary:
            raw = tensor_bytes(output)
            del output["data"]
            output["parameters"] = {**output.get("parameters", {}), "binary_data_size": len(raw)}
            chunks.append(raw)
    header = orjson.dumps(answer)
    return Response(
        header + b"".join(chunks),
        media_type="application/octet-stream",
        headers={**headers, BINARY_HEADER: str(len(header))},
    )


class OpenInferenceApi:
    """The /v2 routes for the registered model ``model_name``, over ``runtime``."""

    def __init__(self, runtime: Runtime, model_name: str, contract: RequestContract) -> None:
        self.runtime, self.model_name, self.contract = runtime, model_name, contract
        r = self.router = APIRouter(prefix="/v2", tags=["open-inference-v2"])
        r.add_api_route("", self.server_metadata, methods=["GET"], response_model=ServerMetadata)
        r.add_api_route("/health/live", self.live, methods=["GET"], response_model=Liveness)
        not_ready: dict[int | str, dict[str, Any]] = {503: documented("No champion loaded yet", ServerReadiness)}
        r.add_api_route(
            "/health/ready", self.ready, methods=["GET"], response_model=ServerReadiness, responses=not_ready
        )
        model_not_ready = {**MODEL_ERRORS, 503: documented("No champion loaded yet", ModelReadiness)}
        for suffix in ("", "/versions/{version}"):
            r.add_api_route(
                f"/models/{{name}}{suffix}",
                self.model_metadata,
                methods=["GET"],
                response_model=ModelMetadata,
                responses=MODEL_ERRORS,
            )
            r.add_api_route(
                f"/models/{{name}}{suffix}/ready",
                self.model_ready,
                methods=["GET"],
                response_model=ModelReadiness,
                responses=model_not_ready,
            )
            r.add_api_route(
                f"/models/{{name}}{suffix}/infer",
                self.infer,
                methods=["POST"],
                response_model=InferResponse,
                responses=INFER_ERRORS,
                openapi_extra={"parameters": headers.openapi_parameters(), "requestBody": request_body(contract)},
            )

    def loaded_versions(self) -> list[str]:
        return sorted({m.version for m in self.runtime.predictor().cache.snapshot().values()}, key=int)

    def check_model(self, name: str, version: str | None) -> None:
        if name != self.model_name:
            raise OipError(f"unknown model {name!r}; this server serves {self.model_name!r}", 404)
        if "champion" not in self.runtime.predictor().cache.snapshot():
            raise OipError(f"model {name!r} is not ready: no champion loaded yet", 503)
        if version is not None and version not in self.loaded_versions():
            raise OipError(f"model {name!r} has no loaded version {version!r}; loaded: {self.loaded_versions()}", 404)

    async def server_metadata(self) -> dict[str, Any]:
        return {"name": "mlops-lab", "version": package_version("mlops-lab"), "extensions": list(EXTENSIONS)}

    async def live(self) -> dict[str, bool]:
        return {"live": True}

    async def ready(self) -> JSONResponse:
        try:
            ok = "champion" in self.runtime.predictor().cache.snapshot()
        except NotReadyError:
            ok = False
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    async def model_metadata(self, name: str, version: str | None = None) -> JSONResponse:
        try:
            self.check_model(name, version)
        except (OipError, NotReadyError) as err:
            return _error(err)
        n_classes = len(self.contract.classes)
        return JSONResponse(
            {
                "name": self.model_name,
                "versions": [version] if version else self.loaded_versions(),
                "platform": "sklearn",
                "inputs": [{"name": "features", "datatype": "FP64", "shape": [-1, len(self.contract.features)]}],
                "outputs": [
                    {"name": "label", "datatype": "BYTES", "shape": [-1]},
                    {"name": "probabilities", "datatype": "FP64", "shape": [-1, n_classes]},
                ],
            }
        )

    async def model_ready(self, name: str, version: str | None = None) -> JSONResponse:
        try:
            self.check_model(name, version)
        except (OipError, NotReadyError) as err:
            status = err.status if isinstance(err, OipError) else 503
            body = {"name": name, "ready": False} if status == 503 else error_body(str(err))
            return JSONResponse(body, status_code=status)
        return JSONResponse({"name": name, "ready": True})

    async def infer(
        self, name: str, request: Request, background: BackgroundTasks, version: str | None = None
    ) -> Response:
        """Score an ``[n, n_features]`` tensor; outputs ``label`` and ``probabilities``."""
        try:
            self.check_model(name, version)
            body = await request.body()
            infer_request, values = parse_infer(body, request.headers.get(BINARY_HEADER), len(self.contract.features))
            binary = binary_outputs(infer_request)
            if problem := self.contract.problem(values):
                raise OipError(f"input {infer_request.inputs[0].name!r}: {problem}")
            raw = {k: request.headers[k.decode()] for k in headers.NAMES if k.decode() in request.headers}
            routing = headers.routing_headers(raw, fallback_id=infer_request.id)
            headers.authorize_override(routing, self.runtime.gate, client_key(request.scope))
            served = await self.runtime.serve(
                values, routing.request_id, user_id=routing.user_id, override=routing.force_arm, version=version,
                client_id=routing.client_id, in_flight=request.scope.get(WORKER_TASKS),
            )  # fmt: skip
        except (OipError, headers.HeaderError, CredentialError, *SERVING_ERRORS) as err:
            return _error(err)
        rid, token = routing.request_id, self.runtime.signer.token(routing.request_id)
        request.state.access = {"request_id": rid, "arm": served.decision.arm, "version": served.model.version}
        background.add_task(self.runtime.after_response, served, values)
        answer = infer_response(self.model_name, served, infer_request, rid)
        answer["parameters"]["feedback_token"] = token
        return binary_answer(answer, binary, {"X-Request-Id": rid, "X-Feedback-Token": token})


def infer_response(model_name: str, served: Served, infer_request: InferRequest, rid: str) -> dict[str, Any]:
    """The V2 InferenceResponse: the outputs the client asked for (all by default), its id echoed."""
    n, probabilities = len(served.scored.labels), served.scored.probabilities
    outputs: dict[str, dict[str, Any]] = {
        "label": {"name": "label", "datatype": "BYTES", "shape": [n], "data": served.scored.labels},
        "probabilities": {
            "name": "probabilities",
            "datatype": "FP64",
            "shape": [n, len(served.scored.classes)],
            "data": probabilities.ravel().tolist() if probabilities is not None else [],
            "parameters": {"classes": served.scored.classes},
        },
    }
    wanted = [o.name for o in infer_request.outputs] if infer_request.outputs else list(OUTPUTS)
    return {
        "model_name": model_name,
        "model_version": served.model.version,
        "id": infer_request.id if infer_request.id is not None else rid,
        "parameters": {"request_id": rid, "arm": served.decision.arm, "strategy": served.decision.strategy},
        "outputs": [dict(outputs[w]) for w in wanted],  # a copy each: the binary extension edits them in place
    }


def _error(err: Exception) -> JSONResponse:
    """The protocol's ``{"error": ...}`` with the project's ``detail`` list (`serving.errors.error_body`)."""
    if isinstance(err, CredentialError):
        return JSONResponse(
            error_body(str(err), [credential_problem(err)]), status_code=err.status, headers=err.headers
        )
    if isinstance(err, OipError):
        status, problems = err.status, err.problems
    elif isinstance(err, headers.HeaderError):
        status, problems = 400, err.problems
    else:
        status, problems = http_status(err), []
    return JSONResponse(error_body(str(err), problems), status_code=400 if status == 422 else status)
