"""POST /v1/explain end to end: real registry (v1 champion, v2 challenger), real prediction log, the app's lifespan."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.params import Params
from core.settings import Settings
from pipelines.data import ingest
from pipelines.registry import load_version_model
from pipelines.training_steps import run_training
from serving.app import create_app
from serving.explain_api import ExplainApi
from serving.prediction_log import predictions_table
from serving.router import RoutingState

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROW = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
TOKEN = "workshop-admin-test-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params) -> tuple[Settings, Path]:
    root = tmp_path_factory.mktemp("explain")
    settings = make_settings(root / "state", poll_interval_s=3600, rate_limit_per_s=0, admin_token=TOKEN)
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    for _ in range(2):  # v1 champion, v2 challenger
        assert run_training(settings, params, data).status == "registered"
    return settings, data


@pytest.fixture(scope="module")
def client(registry, params: Params) -> Iterator[TestClient]:
    settings, _ = registry
    with TestClient(create_app(settings, params)) as test_client:
        yield test_client


def logged_ids(client: TestClient) -> set[str]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.log.flush()
    with runtime.log.engine.connect() as conn:
        return {r[0] for r in conn.execute(sa.select(predictions_table.c.request_id))}


def predictions_counted(client: TestClient) -> float:
    text = client.get("/metrics").text
    lines = [ln for ln in text.splitlines() if ln.startswith("mlops_predictions_total{")]
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in lines)


def test_one_row_is_explained_by_contributions_that_add_up_to_the_served_models_margin(
    client: TestClient, registry, params: Params
) -> None:
    settings, _ = registry
    answer = client.post("/v1/explain", json=ROW, headers={"X-Request-Id": "explain-1"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    predicted = client.post("/v1/predict", json=ROW).json()
    assert (body["class"], body["model_version"], body["arm"]) == (
        predicted["predictions"][0]["class"],
        "1",
        "champion",
    )
    assert (body["method"], body["output"], body["explained_runtime"]) == ("linear", "margin", "sklearn")
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert body["served_runtime"] == runtime.cache.snapshot()["champion"].runtime == "onnx"  # scored by ONNX Runtime
    pipeline = load_version_model(settings, "1")
    values = np.array([[ROW[f] for f in params.dataset.feature_names]])
    k = list(pipeline.classes_).index(body["class"])
    assert body["output_value"] == pytest.approx(pipeline.decision_function(values)[0, k], abs=1e-9)
    assert body["base_value"] + sum(body["contributions"].values()) == pytest.approx(body["output_value"], abs=1e-9)
    assert body["base_value"] + sum(body["by_input"].values()) == pytest.approx(body["output_value"], abs=1e-9)
    assert list(body["by_input"]) == params.dataset.feature_names
    assert "petal_length_x_petal_width" in body["contributions"]  # derived features shown separately
    assert body["probabilities"] == pytest.approx(predicted["predictions"][0]["probabilities"], abs=1e-9)


def test_an_explanation_is_not_a_served_prediction(client: TestClient) -> None:
    before = predictions_counted(client)
    assert client.post("/v1/explain", json=ROW, headers={"X-Request-Id": "explain-not-logged"}).status_code == 200
    assert "explain-not-logged" not in logged_ids(client)
    assert predictions_counted(client) == before
    assert client.post("/v1/predict", json=ROW, headers={"X-Request-Id": "predict-logged"}).status_code == 200
    assert "predict-logged" in logged_ids(client)  # the check above could see a row if there were one
    assert predictions_counted(client) == before + 1
    metrics = client.get("/metrics").text  # counted as an HTTP request on its own route
    assert re.search(r'http_requests_total\{[^}]*route="/v1/explain"[^}]*status="200"', metrics), metrics[:2000]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in ROW.items() if k != "petal_width"}, "petal_width"),
        ({**ROW, "sepal_length": "wide"}, "sepal_length"),
        ({"rows": [ROW, ROW]}, "rows"),
        ({"rows": [ROW]}, "rows"),  # one row, but in the batch form the document does not offer
    ],
)
def test_bad_input_is_a_422_naming_the_field_as_on_predict(client: TestClient, body: object, field: str) -> None:
    answer = client.post("/v1/explain", json=body)
    assert answer.status_code == 422
    assert field in [d["field"] for d in answer.json()["detail"]]
    if field != "rows":  # the same refusal as /v1/predict's
        assert client.post("/v1/predict", json=body).json()["detail"] == answer.json()["detail"]


def test_a_pinned_version_or_a_forced_arm_chooses_the_model_explained(client: TestClient) -> None:
    pinned = client.post("/v1/explain?version=2", json=ROW).json()
    assert (pinned["model_version"], pinned["strategy"]) == ("2", "pinned")
    assert client.post("/v1/explain?version=9", json=ROW).status_code == 404
    assert client.post("/v1/explain", json=ROW, headers={"X-Force-Arm": "challenger"}).status_code == 401
    forced = client.post("/v1/explain", json=ROW, headers={"X-Force-Arm": "challenger", **ADMIN}).json()
    assert (forced["model_version"], forced["arm"], forced["strategy"]) == ("2", "challenger", "forced")


def test_each_user_gets_the_model_the_router_would_serve_them(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    runtime.store.update_routing(lambda s: replace(s, canary_weight=0.5))
    runtime.poller.refresh()
    try:
        users = [{"X-User-Id": f"user-{u}"} for u in range(20)]
        explained = [client.post("/v1/explain", json=ROW, headers=h).json()["model_version"] for h in users]
        served = [client.post("/v1/predict", json=ROW, headers=h).json()["model_version"] for h in users]
    finally:
        runtime.store.update_routing(lambda s: replace(RoutingState.from_params(runtime.params.routing)))
        runtime.poller.refresh()
    assert set(served) == {"1", "2"}  # 20 users at 50 %: both arms (fails with p = 2^-19)
    assert explained == served


def test_the_openapi_document_describes_the_endpoint(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/explain"]["post"]
    assert {"200", "404", "422", "503"} <= set(operation["responses"])
    assert operation["requestBody"]["required"] is True
    assert "version" in [p["name"] for p in operation["parameters"]]


def test_beyond_the_queue_bound_an_explanation_is_a_503_with_retry_after(registry, params: Params) -> None:
    """MLOPS_EXPLAIN_QUEUE=1, an explanation running (its lock held here): one waits, the next is refused at once."""
    import httpx

    from tests.live_server import served_on_loopback

    settings, _ = registry
    bounded = settings.model_copy(update={"explain_queue": 1})
    with TestClient(create_app(bounded, params)) as client, served_on_loopback(client.app) as url:
        api: ExplainApi = client.app.state.explain  # type: ignore[attr-defined]
        answers: list[httpx.Response] = []
        waiter = threading.Thread(target=lambda: answers.append(httpx.post(f"{url}/v1/explain", json=ROW, timeout=60)))
        api._explaining.acquire()  # an explanation is running
        try:
            waiter.start()
            deadline = time.monotonic() + 30
            while api.waiting < 1:  # the first request is admitted and waits for its turn
                assert time.monotonic() < deadline, "the first explanation never queued"
                time.sleep(0.01)
            refused = httpx.post(f"{url}/v1/explain", json=ROW, timeout=30)
        finally:
            api._explaining.release()
        waiter.join(timeout=60)
        assert not waiter.is_alive()
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert "explanation queue of this process is full (1 waiting while one runs" in refused.json()["error"]
        assert refused.json()["detail"][0]["type"] == "explain_queue_full"
        assert [a.status_code for a in answers] == [200]  # the one that waited got its explanation
        assert api.waiting == 0
        assert httpx.post(f"{url}/v1/explain", json=ROW, timeout=30).status_code == 200  # room again
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
        assert re.search(r'http_requests_total\{[^}]*route="/v1/explain"[^}]*status="503"\} 1\.0', metrics)
        operation = client.get("/openapi.json").json()["paths"]["/v1/explain"]["post"]
        assert "MLOPS_EXPLAIN_QUEUE" in operation["responses"]["503"]["description"]
        assert "Retry-After" in operation["responses"]["503"]["headers"]
