"""The serving API: an app factory whose lifespan loads models and keeps them current.

Concepts: REST serving (C18), standard protocols (C19), batch endpoint (C20), feedback loop (C38),
hot reload (C28). Nothing happens at import: `create_app` builds the request contract from the data
contract (`serving.contract`), the protocols over it -- native (`serving.native_api`), MLflow's
``/invocations`` (`serving.mlflow_protocol`), Open Inference Protocol V2 (`serving.oip`), explanations
(`serving.explain_api`), and the admin API when a token is set (`serving.admin`) -- and a *lifespan* that
starts a `serving.runtime.Runtime`
(prediction log, shared state store, aliased models, a poller that swaps models when an alias moves)
and stops it on shutdown, flushing the prediction log. The lifespan holds the state folder's shared
lease (`core.state_lease`), so a restore cannot replace the files under a running service.
``POST /v1/predict`` and ``POST /invocations`` are raw ASGI handlers that `serving.hot_routes.HotRoutes`
calls before FastAPI's router: the router's per-request machinery costs more than our routing and
logging together (docs/benchmarks.md). The interactive docs (``/docs``, ``/redoc``) serve their own assets,
so they work offline, and every request body carries an example drawn from the data contract.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from core.params import Params, load_params
from core.settings import Settings
from core.startup import configure_runtime
from core.state_lease import shared_lease
from serving import admin, hot_routes, limits
from serving.access_log import AccessLog
from serving.contract import RequestContract
from serving.errors import (
    DATABASE_OUTAGES,
    database_unavailable,
    http_error,
    internal_error,
    invalid_request,
    shared_responses,
    validation_problems,
)
from serving.explain_api import ExplainApi, dataset_background
from serving.hot_routes import HotRoutes
from serving.metrics import Metrics, MetricsMiddleware
from serving.mlflow_protocol import MlflowProtocol
from serving.native_api import NativeApi
from serving.oip import OpenInferenceApi
from serving.runtime import Runtime
from serving.schemas import build_schemas


def create_app(settings: Settings | None = None, params: Params | None = None) -> FastAPI:
    """Build the app (cheap, no I/O beyond reading params.yaml); the lifespan loads the models."""
    settings = settings if settings is not None else Settings()  # the app factory is an edge: env read here
    params = params or load_params(settings.params_path)
    contract = RequestContract.from_dataset(params.dataset)
    metrics, access = Metrics(), AccessLog()  # the access log's writer starts with the lifespan when enabled
    runtime = Runtime(settings, params, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_runtime(settings)
        with shared_lease(settings.state):  # held while serving: `mlops-lab restore` is refused meanwhile
            if settings.access_log:
                access.start()
            runtime.start()
            try:
                yield
            finally:
                runtime.stop()
                access.stop()

    # FastAPIOffline: /docs and /redoc load Swagger UI and ReDoc from the package's own copy under
    # /static-offline-docs instead of a CDN, so they render on a laptop with no network.
    app = FastAPIOffline(
        title="mlops-lab serving",
        version="1",
        summary="Native, MLflow and Open Inference Protocol V2 prediction endpoints over registry aliases.",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry hooks stay off: nothing here configures a provider, and asking for one
        # on every request was a measurable share of a one-row prediction (docs/benchmarks.md). Our metrics and
        # access log are `serving.metrics`.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.runtime = runtime
    hot: dict[str, tuple[Any, hot_routes.Handler]] = {}  # filled once the routes exist (below)
    app.add_middleware(HotRoutes, table=hot)  # added first = innermost: inside the limits and the metrics
    # body size, admin authentication, rate limit, CORS; inside the metrics, so 401/413/429 are counted
    limits.install(app, settings, before_body=admin.before_body(runtime))
    app.add_middleware(MetricsMiddleware, metrics=metrics, access=access, routes=app.router.routes)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, http_error)  # 404 / 405 in the one error shape
    app.add_exception_handler(Exception, internal_error)  # a 500 too (Starlette's is plain text)
    for outage in DATABASE_OUTAGES:
        app.add_exception_handler(outage, database_unavailable)

    native = NativeApi(runtime, contract, build_schemas(contract), metrics, settings.model_name)
    mlflow = MlflowProtocol(runtime, contract)
    shared = shared_responses(rate_limited=settings.rate_limit_per_s > 0)  # every route may answer these
    background = dataset_background(settings.resolve(params.dataset.path), params.dataset.feature_names)
    explain = ExplainApi(runtime, contract, build_schemas(contract), settings.model_name, background)
    app.state.explain = explain  # its queue (`waiting`), for operators' and tests' eyes
    oip = OpenInferenceApi(runtime, settings.model_name, contract)
    for router in (native.router, explain.router, mlflow.router, oip.router):
        app.include_router(router, responses=shared)
    hot_routes.register(hot, native.router.routes, "/v1/predict", native.predict_asgi)
    hot_routes.register(hot, mlflow.router.routes, "/invocations", mlflow.invocations_asgi)
    admin.install(app, runtime, shared)  # /v1/admin/*, only when MLOPS_ADMIN_TOKEN is set
    _document_components(app, native.components)
    return app


async def _invalid_request(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return invalid_request(validation_problems(exc.errors()))


def _document_components(app: FastAPI, components: dict[str, Any]) -> None:
    """Add the request-body models (PredictRow, PredictBatch, ...) to the generated OpenAPI document, and
    document every 422 with the body `_invalid_request` answers (FastAPI's default names another shape)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(components)
            for operation in (o for path in schema["paths"].values() for o in path.values()):
                invalid = operation["responses"].get("422", {}).get("content", {}).get("application/json", {})
                if invalid.get("schema") == {"$ref": "#/components/schemas/HTTPValidationError"}:
                    invalid["schema"] = {"$ref": "#/components/schemas/ErrorResponse"}
                    operation["responses"]["422"]["description"] = "Invalid request: the fields at fault are named"
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
