"""Every error answer of the service has the project's one shape, ``{"error": "...", "detail": [...]}``.

A sweep over the ways a request can fail -- the typed schema, JSON that does not parse, bytes that are
not UTF-8, an unknown route or method, a body over the limit, the rate limit, a bug (500), a refused
credential, and each protocol's own refusals -- on one app with a real registry (one trained model)
and its lifespan. MLflow's ``/invocations`` and the Open Inference Protocol keep their own keys
(``error_code`` / ``message``; ``error``) beside the shared ones, so their stock clients read them unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.params import Params
from core.settings import Settings
from pipelines.data import ingest
from pipelines.training_steps import run_training
from serving.app import create_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = "error-shape-test-token-7c1e"
JSON = {"Content-Type": "application/json"}
NOT_UTF8 = b"\xff\xfe\x00\x81"
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
V2 = "/v2/models/iris-classifier/infer"
TENSOR = {"name": "features", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}

# name -> (method, path, request keyword arguments, expected status)
CASES: dict[str, tuple[str, str, dict[str, Any], int]] = {
    "native: schema": ("POST", "/v1/predict", {"json": {**ROW, "colour": 1}}, 422),
    "native: JSON syntax": ("POST", "/v1/predict", {"content": b'{"sepal_length": ', "headers": JSON}, 422),
    "native: not UTF-8": ("POST", "/v1/predict", {"content": NOT_UTF8, "headers": JSON}, 422),
    "native: media type": ("POST", "/v1/predict", {"content": b"a=1", "headers": {"Content-Type": "text/plain"}}, 415),
    "native: routing header": ("POST", "/v1/predict", {"json": ROW, "headers": {"X-Request-Id": "has:colon"}}, 422),
    "feedback: not UTF-8": ("POST", "/v1/feedback", {"content": NOT_UTF8, "headers": JSON}, 422),
    "feedback: no token": ("POST", "/v1/feedback", {"json": {"request_id": "r-1", "label": "setosa"}}, 401),
    "admin: no token": ("PUT", "/v1/admin/strategy", {"content": NOT_UTF8, "headers": JSON}, 401),
    "admin: not UTF-8": (
        "PUT", "/v1/admin/strategy",
        {"content": NOT_UTF8, "headers": {**JSON, "Authorization": f"Bearer {TOKEN}"}}, 422,
    ),
    "admin: schema": (
        "PUT", "/v1/admin/weights", {"json": {"canary_weight": 2}, "headers": {"Authorization": f"Bearer {TOKEN}"}}, 422
    ),
    "unknown route": ("GET", "/v1/nope", {}, 404),
    "unknown method": ("DELETE", "/v1/predict", {}, 405),
    "unknown method, FastAPI route": ("PUT", "/healthz", {}, 405),
    "body over the limit": ("POST", "/v1/predict", {"content": b"x" * 4097, "headers": JSON}, 413),
    "mlflow: not UTF-8": ("POST", "/invocations", {"content": NOT_UTF8, "headers": JSON}, 400),
    "mlflow: media type": ("POST", "/invocations", {"content": b"x", "headers": {"Content-Type": "text/plain"}}, 415),
    "mlflow: missing column": ("POST", "/invocations", {"json": {"dataframe_records": [{"sepal_length": 1}]}}, 400),
    "oip: not UTF-8": ("POST", V2, {"content": NOT_UTF8, "headers": JSON}, 400),
    "oip: schema": ("POST", V2, {"json": {"inputs": []}}, 400),
    "oip: unknown model": ("POST", "/v2/models/nope/infer", {"json": {"inputs": [TENSOR]}}, 404),
    "oip: forced arm without token": (
        "POST", V2, {"json": {"inputs": [TENSOR]}, "headers": {"X-Force-Arm": "champion"}}, 401
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("error-shape")
    settings = make_settings(root / "state", poll_interval_s=3600, admin_token=TOKEN, max_body_bytes=4096)
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    assert run_training(settings, params, data).status == "registered"
    app = create_app(settings, params)

    async def bug() -> None:  # a route with a bug, for the 500 (added before the app starts)
        raise RuntimeError("a secret-looking internal detail: sqlite:///fake/example.db")

    app.add_api_route("/v1/test-bug", bug, methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def assert_one_shape(response: Any) -> dict[str, Any]:
    """The body is JSON with a one-line ``error`` and a ``detail`` list of {field, msg, type} entries."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert isinstance(body["error"], str), body
    assert body["error"], body
    assert "\n" not in body["error"], body
    assert isinstance(body["detail"], list), body
    for entry in body["detail"]:
        assert {"field", "msg", "type"} <= set(entry), body
    return dict(body)


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), CASES.values(), ids=list(CASES))
def test_every_error_has_the_one_shape(client: TestClient, method: str, path: str, kwargs: Any, status: int) -> None:
    response = client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    body = assert_one_shape(response)
    if path == "/invocations":
        assert body["message"] == body["error"]  # MLflow's keys beside ours, for MLflow's clients
        assert body["error_code"]


def test_404_and_405_name_what_is_wrong(client: TestClient) -> None:
    missing = client.get("/v1/nope")
    assert "GET /v1/nope" in missing.json()["error"]
    assert missing.json()["detail"] == [{"field": "path", "msg": "no such route", "type": "not_found"}]
    wrong = client.delete("/v1/predict")
    assert wrong.headers["allow"] == "POST"
    assert wrong.json()["detail"][0]["field"] == "method"


def test_a_500_has_the_shape_and_tells_nothing_of_the_failure(client: TestClient) -> None:
    response = client.get("/v1/test-bug")
    assert response.status_code == 500
    body = assert_one_shape(response)
    assert "sqlite" not in response.text
    assert "RuntimeError" not in response.text
    assert body["detail"] == []


def test_a_rate_limited_client_gets_the_shape(tmp_path: Path, make_settings) -> None:
    settings: Settings = make_settings(tmp_path / "state", rate_limit_per_s=0.01, rate_limit_burst=1)
    limited = TestClient(create_app(settings))  # no lifespan: the limit answers before any route
    assert limited.get("/healthz").status_code == 200
    response = limited.get("/v1/nope")
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert assert_one_shape(response)["detail"][0]["field"] == "client"
