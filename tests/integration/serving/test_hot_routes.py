"""The hot POST routes answer the same through `serving.hot_routes` as through FastAPI's router.

`HotRoutes` hands ``POST /v1/predict`` and ``POST /invocations`` to raw ASGI handlers; the router
still serves them when the dispatch does not apply (here: a ``root_path`` deployment), through the
same handler. Both ways must give byte-identical answers, the same errors, the same log rows and
the same metric labels.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.params import Params
from core.settings import Settings
from pipelines.data import ingest
from pipelines.training_steps import run_training
from serving.app import create_app
from serving.hot_routes import HotRoutes
from serving.prediction_log import predictions_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
ROOT = "/api"  # a proxy prefix: the dispatch steps aside and the router serves the route
TOKEN = "workshop-admin-test-token"
PER_REQUEST = ("x-request-id", "x-feedback-token")  # headers that differ by request id


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("hot")
    settings: Settings = make_settings(root / "state", poll_interval_s=3600, rate_limit_per_s=0, admin_token=TOKEN)
    assert (
        run_training(settings, params, ingest(params.dataset, params.ingest, root / "iris.csv")).status == "registered"
    )
    app = create_app(settings, params)
    with TestClient(app) as hot, TestClient(app, root_path=ROOT) as routed:
        yield {"hot": hot, "routed": routed}


def same(hot: Any, routed: Any, hot_id: str, routed_id: str) -> None:
    """Status, header names in order, and body (with the request id and feedback token swapped) are identical."""
    assert hot.status_code == routed.status_code
    assert list(hot.headers.keys()) == list(routed.headers.keys())
    assert {k: v for k, v in hot.headers.items() if k not in PER_REQUEST} == {
        k: v for k, v in routed.headers.items() if k not in PER_REQUEST
    }

    def general(answer: Any, rid: str) -> bytes:
        content = answer.content.replace(rid.encode(), b"ID")
        token = answer.headers.get("x-feedback-token")
        return content.replace(token.encode(), b"TOKEN") if token else content

    assert general(hot, hot_id) == general(routed, routed_id)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/predict", {"json": ROW}),
        ("/v1/predict", {"json": {"rows": [ROW, ROW]}}),
        ("/v1/predict", {"json": {**ROW, "petal_width": -5}}),  # 422 naming the field
        ("/v1/predict", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
        ("/invocations", {"json": {"dataframe_records": [ROW]}}),
        ("/invocations", {"json": {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())]}}}),
        ("/invocations", {"json": {"dataframe_records": [{"sepal_length": 1}]}}),  # 400 naming the column
        ("/invocations", {"content": b"a,b\n1,2", "headers": {"Content-Type": "text/plain"}}),  # 415
    ],
)
def test_hot_and_routed_answers_are_identical(clients: dict[str, Any], path: str, body: dict[str, Any]) -> None:
    n = len(json.dumps(body, default=str))
    hot_id, routed_id = f"hot-{path[1:3]}-{n}", f"rte-{path[1:3]}-{n}"  # same length: same Content-Length
    hot = clients["hot"].post(path, headers={"X-Request-Id": hot_id, **body.get("headers", {})},
                              **{k: v for k, v in body.items() if k != "headers"})  # fmt: skip
    routed = clients["routed"].post(ROOT + path, headers={"X-Request-Id": routed_id, **body.get("headers", {})},
                                    **{k: v for k, v in body.items() if k != "headers"})  # fmt: skip
    same(hot, routed, hot_id, routed_id)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Request-Id": "bad id!"},
        {"X-Force-Arm": "nobody", "Authorization": f"Bearer {TOKEN}"},
        {"X-User-Id": "u" * 201},
    ],
)
def test_header_errors_are_the_same_422_both_ways(clients: dict[str, Any], headers: dict[str, str]) -> None:
    hot = clients["hot"].post("/v1/predict", json=ROW, headers=headers)
    routed = clients["routed"].post(ROOT + "/v1/predict", json=ROW, headers=headers)
    assert hot.status_code == 422
    assert hot.content == routed.content
    assert dict(hot.headers) == dict(routed.headers)


def test_both_ways_log_one_row_each_and_label_metrics_by_route(clients: dict[str, Any]) -> None:
    hot, routed = clients["hot"], clients["routed"]
    assert hot.post("/v1/predict", json=ROW, headers={"X-Request-Id": "log-hot"}).status_code == 200
    assert routed.post(ROOT + "/v1/predict", json=ROW, headers={"X-Request-Id": "log-routed"}).status_code == 200
    assert hot.post("/invocations", json={"dataframe_records": [ROW]}).status_code == 200
    runtime = hot.app.state.runtime
    assert runtime.log.flush()
    with runtime.log.engine.connect() as conn:
        ids = conn.scalars(
            sa.select(predictions_table.c.request_id).where(predictions_table.c.request_id.like("log-%"))
        )
        assert sorted(ids) == ["log-hot", "log-routed"]
    text = hot.get("/metrics").text
    assert 'http_requests_total{method="POST",route="/v1/predict",status="200"}' in text
    assert 'http_requests_total{method="POST",route="/invocations",status="200"}' in text
    requests = [line for line in text.splitlines() if line.startswith("http_requests_total{")]
    assert requests
    assert not [line for line in requests if 'route="unmatched"' in line]


def test_other_methods_still_go_through_the_router(clients: dict[str, Any]) -> None:
    hot = clients["hot"]
    assert hot.get("/v1/predict").status_code == 405
    assert hot.get("/invocations").status_code == 405
    assert hot.post("/v1/predictions", json=ROW).status_code == 404


def test_the_dispatch_serves_hot_posts_without_the_router(clients: dict[str, Any]) -> None:
    """Without this, every test above would pass with both ways going through the router."""
    layer = clients["hot"].app.middleware_stack
    while not isinstance(layer, HotRoutes):
        layer = layer.app
    assert set(layer.table) == {"/v1/predict", "/invocations"}

    async def no_router(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError(f"the router was called for {scope['method']} {scope['path']}")

    bypass, sent = HotRoutes(no_router, layer.table), []
    body = json.dumps(ROW).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "method": "POST", "path": "/v1/predict", "root_path": "", "headers": headers}
    asyncio.run(bypass(scope, receive, send))
    assert sent[0]["status"] == 200
    assert scope["route"].path == "/v1/predict"  # what the metrics label reads
    with pytest.raises(AssertionError, match="the router was called for GET"):
        asyncio.run(bypass({**scope, "method": "GET"}, receive, send))
