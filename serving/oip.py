"""Open Inference Protocol V2 (KServe / Triton / Seldon MLServer), usable by ``tritonclient``.

Concept: standard serving protocols (C19). The V2 protocol is what Kubernetes model servers speak,
so clients, load generators and gateways built for them work against this service too:
server and model health, model metadata, and ``infer`` with typed tensors. The model takes one
input tensor ``[n, n_features]`` (FP32 or FP64, features in the contract's column order, data
row-major flat or nested, or as raw little-endian bytes via the binary-tensor extension, which
``tritonclient`` uses by default) and returns two outputs: ``label`` (BYTES, ``[n]``) and
``probabilities`` (FP64, ``[n, n_classes]``, the model's class order). The request ``id`` is echoed.

The model name is the registry name; its versions are the ones currently loaded behind aliases.
``/v2/models/{name}/infer`` is routed like /v1/predict (canary, A/B, ...); ``.../versions/{v}/infer``
pins that exact version. Errors: 400 ``{"error"}`` for invalid input, 404 for an unknown model or
version, 503 while no champion is loaded. As with MLflow's protocol, value ranges are not checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from serving.predict import SERVING_ERRORS, NotReadyError, http_status
from serving.schemas import error_detail, new_request_id, out_of_range, valid_request_id

if TYPE_CHECKING:
    from serving.runtime import Runtime

DTYPES = {"FP32": "<f4", "FP64": "<f8"}
OUTPUTS = ("label", "probabilities")


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


class OipError(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_infer(body: bytes, header_length: str | None, n_features: int) -> tuple[InferRequest, np.ndarray]:
    """Validate an infer body (JSON, or JSON header + binary tensor data): the request and an [n, F] array."""
    try:
        split = int(header_length) if header_length else len(body)
        request = InferRequest.model_validate_json(body[:split])
    except ValueError as err:  # ValidationError and a bad header length are both ValueErrors
        detail = error_detail(err.errors()) if isinstance(err, ValidationError) else [{"field": "header", "msg": err}]
        raise OipError("invalid infer request: " + "; ".join(f"{d['field']}: {d['msg']}" for d in detail)) from err
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
    if not np.isfinite(matrix).all():
        raise OipError(f"input {tensor.name!r}: values must be finite numbers")
    unknown = [o.name for o in request.outputs or [] if o.name not in OUTPUTS]
    if unknown:
        raise OipError(f"unknown output(s) {unknown}; this model has {list(OUTPUTS)}")
    return request, matrix


def build_router(
    runtime: Runtime,
    model_name: str,
    features: Sequence[str],
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> APIRouter:
    """The /v2 routes for the registered model ``model_name``."""
    router = APIRouter(prefix="/v2", tags=["open-inference-v2"])

    def loaded_versions() -> list[str]:
        return sorted({m.version for m in runtime.predictor().cache.snapshot().values()}, key=int)

    def check_model(name: str, version: str | None) -> None:
        if name != model_name:
            raise OipError(f"unknown model {name!r}; this server serves {model_name!r}", 404)
        if "champion" not in runtime.predictor().cache.snapshot():
            raise OipError(f"model {name!r} is not ready: no champion loaded yet", 503)
        if version is not None and version not in loaded_versions():
            raise OipError(f"model {name!r} has no loaded version {version!r}; loaded: {loaded_versions()}", 404)

    @router.get("")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "mlops-lab", "version": package_version("mlops-lab"), "extensions": []}

    @router.get("/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @router.get("/health/ready")
    async def ready() -> JSONResponse:
        try:
            ok = "champion" in runtime.predictor().cache.snapshot()
        except NotReadyError:
            ok = False
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @router.get("/models/{name}")
    @router.get("/models/{name}/versions/{version}")
    async def model_metadata(name: str, version: str | None = None) -> JSONResponse:
        try:
            check_model(name, version)
        except (OipError, NotReadyError) as err:
            return _error(err)
        n_classes = len(runtime.params.dataset.classes)
        return JSONResponse(
            {
                "name": model_name,
                "versions": [version] if version else loaded_versions(),
                "platform": "sklearn",
                "inputs": [{"name": "features", "datatype": "FP64", "shape": [-1, len(features)]}],
                "outputs": [
                    {"name": "label", "datatype": "BYTES", "shape": [-1]},
                    {"name": "probabilities", "datatype": "FP64", "shape": [-1, n_classes]},
                ],
            }
        )

    @router.get("/models/{name}/ready")
    @router.get("/models/{name}/versions/{version}/ready")
    async def model_ready(name: str, version: str | None = None) -> JSONResponse:
        try:
            check_model(name, version)
        except (OipError, NotReadyError) as err:
            status = err.status if isinstance(err, OipError) else 503
            body = {"name": name, "ready": False} if status == 503 else {"error": str(err)}
            return JSONResponse(body, status_code=status)
        return JSONResponse({"name": name, "ready": True})

    @router.post("/models/{name}/infer")
    @router.post("/models/{name}/versions/{version}/infer")
    async def infer(name: str, request: Request, background: BackgroundTasks, version: str | None = None) -> Response:
        """Score an ``[n, n_features]`` tensor; outputs ``label`` and ``probabilities``."""
        try:
            check_model(name, version)
            body = await request.body()
            infer_request, values = parse_infer(
                body, request.headers.get("inference-header-content-length"), len(features)
            )
            rid = str(infer_request.id) if valid_request_id(infer_request.id) else new_request_id()
            frame = pd.DataFrame(values, columns=list(features))
            problem = out_of_range(frame, ranges) if ranges else None
            if problem:
                raise OipError(f"input {infer_request.inputs[0].name!r}: {problem}")
            served = await runtime.serve(
                values,  # already n x features float64 (parse_infer)
                rid,
                user_id=request.headers.get("x-user-id"),
                override=request.headers.get("x-force-arm"),
                version=version,
            )
        except (OipError, *SERVING_ERRORS) as err:
            return _error(err)
        request.state.access = {"request_id": rid, "arm": served.decision.arm, "version": served.model.version}
        background.add_task(runtime.after_response, served, values)
        n = len(frame)
        probabilities = served.scored.probabilities
        outputs = {
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
        return JSONResponse(
            {
                "model_name": model_name,
                "model_version": served.model.version,
                "id": infer_request.id if infer_request.id is not None else rid,
                "parameters": {"request_id": rid, "arm": served.decision.arm, "strategy": served.decision.strategy},
                "outputs": [outputs[w] for w in wanted],
            },
            headers={"X-Request-Id": rid},
        )

    return router


def _error(err: Exception) -> JSONResponse:
    status = err.status if isinstance(err, OipError) else http_status(err)
    return JSONResponse({"error": str(err)}, status_code=400 if status == 422 else status)
