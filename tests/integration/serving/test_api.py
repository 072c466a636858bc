"""The native API end to end: real MLflow registry, real prediction log, the app's own lifespan.

One registry per module (v1 champion, v2 challenger, trained by the real training path) keeps it
fast; each test that changes routing or aliases puts them back.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.mlflow_config import mlflow_client
from core.params import Params
from core.settings import Settings
from pipelines.data import ingest, split_features_target
from pipelines.fit import fit_and_evaluate
from pipelines.holdout import load_holdout, without_holdout
from pipelines.registry import promote
from pipelines.training_steps import load_data, run_training
from serving.app import create_app
from serving.contract import MAX_BATCH_ROWS
from serving.prediction_log import feedback_table, predictions_table
from serving.router import RoutingState

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}  # a setosa
VIRGINICA = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
TOKEN = "workshop-admin-test-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params) -> tuple[Settings, Path]:
    root = tmp_path_factory.mktemp("api")
    # Tests drive the poller themselves; the rate limit is off because these tests share one client
    # address and send bursts (600 requests in the hot-reload test); its own tests are in test_admin.py.
    settings = make_settings(root / "state", poll_interval_s=3600, rate_limit_per_s=0, admin_token=TOKEN)
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    for _ in range(2):  # v1 champion, v2 challenger
        assert run_training(settings, params, data).status == "registered"
    return settings, data


@pytest.fixture(scope="module")
def client(registry, params: Params) -> Iterator[TestClient]:
    settings, _ = registry
    with TestClient(create_app(settings, params)) as test_client:  # `with`: the lifespan runs
        yield test_client


@contextmanager
def routing(client: TestClient, **changes: Any) -> Iterator[None]:
    """Write routing state to the shared store, let the poller pick it up, restore it afterwards."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    runtime.store.update_routing(lambda s: replace(s, **changes))
    runtime.poller.refresh()
    try:
        yield
    finally:
        runtime.store.update_routing(lambda s: replace(RoutingState.from_params(runtime.params.routing)))
        runtime.poller.refresh()


def logged(client: TestClient, *ids: str) -> dict[str, Any]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.log.flush()
    p = predictions_table.c
    with runtime.log.engine.connect() as conn:
        rows = conn.execute(sa.select(predictions_table).where(p.request_id.in_(ids))).mappings().all()
    return {r["request_id"]: dict(r) for r in rows}


def label(client: TestClient, answer: dict[str, Any], value: str, request_id: str | None = None) -> Any:
    """POST /v1/feedback for a /v1/predict answer, with the feedback token it came with."""
    body = {"request_id": request_id or answer["request_id"], "label": value}
    return client.post("/v1/feedback", json=body, headers={"X-Feedback-Token": answer["feedback_token"]})


def test_predict_one_row(client: TestClient) -> None:
    response = client.post("/v1/predict", json=ROW, headers={"X-Request-Id": "one-row-1"})
    assert response.status_code == 200
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"] == "one-row-1"
    assert (body["model_name"], body["model_version"], body["arm"], body["strategy"]) == (
        "iris-classifier",
        "1",
        "champion",
        "canary",
    )
    [prediction] = body["predictions"]
    assert prediction["id"] == "one-row-1"
    assert prediction["class"] == "setosa" == max(prediction["probabilities"], key=prediction["probabilities"].get)
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
    record = logged(client, "one-row-1")["one-row-1"]
    assert (record["prediction"], record["arm"], record["model_version"], record["status"]) == (
        "setosa",
        "champion",
        "1",
        "ok",
    )
    assert record["features"] == ROW


@pytest.mark.parametrize(("page", "asset"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
def test_the_interactive_docs_load_every_asset_from_the_service_itself(
    client: TestClient, page: str, asset: str
) -> None:
    """Offline means offline: Swagger UI and ReDoc come from /static-offline-docs, never from a CDN."""
    html = client.get(page)
    assert html.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', html.text)
    assert f"/static-offline-docs/{asset}" in sources
    assert [s for s in sources if s.startswith(("http:", "https:", "//"))] == []  # nothing from the network
    script = client.get(f"/static-offline-docs/{asset}")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert len(script.content) > 100_000  # the real bundle, not a stub


def test_the_documented_examples_are_valid_requests(client: TestClient) -> None:
    """The examples "Try it out" sends are drawn from the data contract, so each one is answered 200."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    [row] = schemas["PredictRow"]["examples"]
    [batch] = schemas["PredictBatch"]["examples"]
    assert client.post("/v1/predict", json=row).status_code == 200
    answered = client.post("/v1/predict", json=batch)
    assert answered.status_code == 200
    assert len(answered.json()["predictions"]) == len(batch["rows"]) == 2
    [feedback] = schemas["FeedbackRequest"]["examples"]
    assert set(feedback) == {"request_id", "label"}
    assert feedback["label"] in schemas["FeedbackRequest"]["properties"]["label"]["enum"]


def test_each_request_writes_one_structured_access_log_line(client: TestClient, caplog) -> None:
    caplog.set_level(logging.INFO, logger="serving.access")
    client.post("/v1/predict", json=ROW, headers={"X-Request-Id": "logged-1", "X-Force-Arm": "challenger", **ADMIN})
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "serving.access"]
    assert {k: line[k] for k in ("path", "status", "request_id", "arm", "version")} == {
        "path": "/v1/predict",
        "status": 200,
        "request_id": "logged-1",
        "arm": "challenger",
        "version": "2",
    }
    assert line["latency_ms"] > 0


def test_predict_batch(client: TestClient) -> None:
    response = client.post("/v1/predict", json={"rows": [ROW, VIRGINICA, ROW]}, headers={"X-Request-Id": "batch-1"})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert [p["id"] for p in predictions] == ["batch-1:0", "batch-1:1", "batch-1:2"]
    assert [p["class"] for p in predictions] == ["setosa", "virginica", "setosa"]
    assert set(logged(client, "batch-1:0", "batch-1:1", "batch-1:2")) == {"batch-1:0", "batch-1:1", "batch-1:2"}


def test_repeated_full_batches_are_logged_exactly_once(client: TestClient) -> None:
    """Five concurrent 10,000-row batches: every row logged once, none refused (the log holds them all)."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    refused_before = runtime.log.stats().refused
    rows = [ROW, VIRGINICA] * (MAX_BATCH_ROWS // 2)
    statuses: list[int] = []

    def send(k: int) -> None:
        response = client.post("/v1/predict", json={"rows": rows}, headers={"X-Request-Id": f"full-{k}"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(k,)) for k in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == [200] * 5
    assert runtime.log.flush(timeout=60)
    p = predictions_table.c
    with runtime.log.engine.connect() as conn:
        stored = conn.scalar(sa.select(sa.func.count()).where(p.request_id.like("full-%")))
    assert stored == 5 * MAX_BATCH_ROWS
    assert runtime.log.stats().refused == refused_before


def test_a_saturated_prediction_log_answers_503_and_serves_nothing_unlogged(client: TestClient, registry) -> None:
    """The log's database is locked (an outage): once the log is full, requests get 503 and are not logged."""
    settings, _ = registry
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    plog = runtime.log
    assert plog.flush()
    saved = plog.max_pending_rows, plog.enqueue_timeout
    plog.max_pending_rows, plog.enqueue_timeout = 3, 0.2
    lock = sqlite3.connect(sa.make_url(settings.prediction_log_uri).database, timeout=10)
    try:
        lock.execute("BEGIN EXCLUSIVE")  # the writer cannot commit while this is held
        answers = [
            client.post("/v1/predict", json=ROW, headers={"X-Request-Id": f"sat-{i}"}) for i in range(6)
        ]  # fmt: skip
    finally:
        lock.rollback()
        lock.close()
        plog.max_pending_rows, plog.enqueue_timeout = saved
    assert [a.status_code for a in answers] == [200, 200, 200, 503, 503, 503]
    assert "prediction log is full" in answers[3].json()["error"]
    assert "predictions" not in answers[3].json()
    assert set(logged(client, *(f"sat-{i}" for i in range(6)))) == {"sat-0", "sat-1", "sat-2"}


INVALID_CASES = [
    *("missing", "string", "bool", "null", "above-max", "below-min"),
    *("extra", "batch-row", "empty", "batch-extra", "list"),
]


def _without(key: str) -> dict[str, float]:
    return {k: v for k, v in ROW.items() if k != key}


@pytest.mark.parametrize(
    ("body", "field", "error_type"),
    [
        (_without("petal_width"), "petal_width", "missing"),
        ({**ROW, "sepal_length": "5.1"}, "sepal_length", "float_type"),
        ({**ROW, "sepal_width": True}, "sepal_width", "float_type"),
        ({**ROW, "sepal_width": None}, "sepal_width", "float_type"),
        ({**ROW, "petal_length": 80.0}, "petal_length", "less_than_equal"),
        ({**ROW, "petal_width": 0.0}, "petal_width", "greater_than_equal"),
        ({**ROW, "colour": 1.0}, "colour", "extra_forbidden"),
        ({"rows": [ROW, {**ROW, "sepal_length": 99}]}, "rows.1.sepal_length", "less_than_equal"),
        ({"rows": []}, "rows", "too_short"),
        ({"rows": [ROW], "extra": 1}, "extra", "extra_forbidden"),
        ([ROW], "body", "model_type"),
    ],
    ids=INVALID_CASES,
)
def test_invalid_input_is_a_422_naming_the_field(client: TestClient, body: Any, field: str, error_type: str) -> None:
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [(d["field"], d["type"]) for d in detail] == [(field, error_type)]  # one branch's errors only
    assert field in response.json()["error"]


def test_batch_row_limit_and_malformed_json_are_422_not_5xx(client: TestClient) -> None:
    too_many = client.post("/v1/predict", json={"rows": [ROW] * (MAX_BATCH_ROWS + 1)})
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["field"] == "rows"
    broken = client.post("/v1/predict", content=b'{"sepal_length": 5.1,', headers={"Content-Type": "application/json"})
    assert broken.status_code == 422
    assert broken.json()["detail"][0]["field"] == "body"
    bad_id = client.post("/v1/predict", json=ROW, headers={"X-Request-Id": "has:colon"})
    assert bad_id.status_code == 422
    assert bad_id.json()["detail"][0]["field"] == "X-Request-Id"


def test_predict_takes_only_json_bodies_so_a_cross_site_form_cannot_write_to_the_log(client: TestClient) -> None:
    enqueued = client.app.state.runtime.log.stats().enqueued  # type: ignore[attr-defined]
    body = b'{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        sent = {"Content-Type": content_type} if content_type else {}
        refused = client.post("/v1/predict", content=body, headers=sent)
        assert refused.status_code == 415, content_type
        assert refused.json()["detail"][0]["field"] == "Content-Type"
        assert "send application/json" in refused.json()["error"]
    assert client.app.state.runtime.log.stats().enqueued == enqueued  # type: ignore[attr-defined]  # nothing logged
    utf8 = client.post("/v1/predict", content=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert utf8.status_code == 200


def test_force_arm_header_overrides_routing(client: TestClient) -> None:
    forced = client.post("/v1/predict", json=ROW, headers={"X-Force-Arm": "challenger", **ADMIN})
    assert (forced.status_code, forced.json()["arm"], forced.json()["model_version"]) == (200, "challenger", "2")
    assert forced.json()["strategy"] == "forced"
    wrong = client.post("/v1/predict", json=ROW, headers={"X-Force-Arm": "canary-please", **ADMIN})
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["field"] == "X-Force-Arm"


def test_canary_routes_by_user_and_sticks(client: TestClient) -> None:
    with routing(client, canary_weight=0.5):
        first = {u: client.post("/v1/predict", json=ROW, headers={"X-User-Id": f"user-{u}"}).json() for u in range(40)}
        again = {u: client.post("/v1/predict", json=ROW, headers={"X-User-Id": f"user-{u}"}).json() for u in range(40)}
    arms = Counter(body["arm"] for body in first.values())
    assert set(arms) == {"champion", "challenger"}  # 40 users at 50 %: both arms (fails with p = 2^-39)
    assert all(first[u]["arm"] == again[u]["arm"] for u in first)  # sticky per user
    assert all(body["model_version"] == {"champion": "1", "challenger": "2"}[body["arm"]] for body in first.values())


def test_without_a_user_id_each_request_is_assigned_on_its_own(client: TestClient) -> None:
    """Stickiness needs a user key: with no X-User-Id the request id is the key, so one client hops arms."""
    with routing(client, canary_weight=0.5):
        anonymous = [client.post("/v1/predict", json=ROW).json()["arm"] for _ in range(40)]
        keyed = [
            client.post("/v1/predict", json=ROW, headers={"X-User-Id": "same-user"}).json()["arm"] for _ in range(40)
        ]
    assert set(anonymous) == {"champion", "challenger"}  # 40 fresh request ids at 50 %: both arms (p = 2^-39)
    assert len(set(keyed)) == 1  # the same key always lands in the same bucket


def test_the_bandit_routes_each_request_not_each_user(client: TestClient) -> None:
    """A bandit draws an arm per request from the reward posteriors: one user id is not kept on one arm."""
    with routing(client, strategy="bandit"):
        arms = [
            client.post("/v1/predict", json=ROW, headers={"X-User-Id": "same-user"}).json()["arm"] for _ in range(60)
        ]
    # Thompson draws with near-equal posteriors (a prior and at most a reward or two): both arms; one arm 60 times
    # in a row would need p < 0.75^60, about 3e-8.
    assert set(arms) == {"champion", "challenger"}


def test_shadow_scores_the_challenger_after_the_response_and_never_changes_it(client: TestClient) -> None:
    plain = client.post("/v1/predict", json=VIRGINICA).json()
    with routing(client, strategy="shadow"):
        response = client.post("/v1/predict", json=VIRGINICA, headers={"X-Request-Id": "mirror-1"})
    body = response.json()
    assert (body["arm"], body["model_version"], body["strategy"]) == ("champion", "1", "shadow")
    assert body["predictions"][0]["probabilities"] == plain["predictions"][0]["probabilities"]
    records = logged(client, "mirror-1", "mirror-1:shadow")  # TestClient returns after the background task
    assert (records["mirror-1"]["arm"], records["mirror-1"]["model_version"]) == ("champion", "1")
    assert (records["mirror-1:shadow"]["arm"], records["mirror-1:shadow"]["model_version"]) == ("shadow", "2")
    assert 'mlops_shadow_predictions_total{agreed="true"}' in client.get("/metrics").text


def test_a_locked_database_answers_503_with_retry_after_and_the_label_is_stored_on_retry(client: TestClient) -> None:
    import sqlite3

    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    answer = client.post("/v1/predict", json=ROW).json()
    assert runtime.log.flush()
    holder = sqlite3.connect(runtime.log.engine.url.database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock past the busy timeout
    try:
        busy = label(client, answer, "setosa")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "5"
    assert "nothing was stored, retry" in busy.json()["error"]
    retried = label(client, answer, "setosa")
    assert (retried.status_code, retried.json()["status"]) == (200, "recorded")


def test_feedback_is_idempotent(client: TestClient) -> None:
    answer = client.post("/v1/predict", json=ROW).json()
    rid = answer["request_id"]
    first = label(client, answer, "setosa")
    again = label(client, answer, "setosa")
    other = label(client, answer, "virginica")
    unknown = client.post("/v1/feedback", json={"request_id": "never-served", "label": "setosa"}, headers=ADMIN)
    bad_label = label(client, answer, "rose")
    assert (first.status_code, first.json()["status"]) == (200, "recorded")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert (other.status_code, other.json()["status"]) == (409, "conflict")
    assert (unknown.status_code, unknown.json()["status"]) == (404, "unknown_request")
    assert bad_label.status_code == 422
    assert bad_label.json()["detail"][0]["field"] == "label"
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.log.engine.connect() as conn:
        labels = conn.execute(sa.select(feedback_table.c.label).where(feedback_table.c.request_id == rid)).all()
    assert labels == [("setosa",)]  # stored once, never overwritten


def test_feedback_on_a_bandit_prediction_rewards_its_arm_once(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with routing(client, strategy="bandit"):
        body = client.post("/v1/predict", json=ROW).json()
    assert body["strategy"] == "bandit"
    before = runtime.store.bandit().successes[body["arm"]]
    for _ in range(2):  # the duplicate must not reward again
        assert label(client, body, "setosa").status_code == 200
    assert runtime.store.bandit().successes[body["arm"]] == before + 1.0


def test_a_forced_prediction_is_no_reward_for_the_bandit(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with routing(client, strategy="bandit"):
        body = client.post("/v1/predict", json=ROW, headers={"X-Force-Arm": "challenger", **ADMIN}).json()
    assert (body["arm"], body["strategy"]) == ("challenger", "forced")
    before = runtime.store.bandit()
    assert (label(client, body, "setosa").json()["status"]) == "recorded"
    assert runtime.store.bandit() == before  # whoever may force an arm cannot feed the bandit


def test_feedback_needs_the_token_of_its_answer_or_the_admin_token(client: TestClient) -> None:
    answer = client.post("/v1/predict", json={"rows": [ROW, VIRGINICA]}).json()
    other = client.post("/v1/predict", json=ROW).json()
    assert answer["feedback_token"] != other["feedback_token"]
    row = answer["predictions"][1]["id"]  # one token covers every row of its request
    caller = TestClient(client.app, client=("192.0.2.77", 50000))
    missing = caller.post("/v1/feedback", json={"request_id": row, "label": "virginica"})
    assert missing.status_code == 401
    assert missing.json()["detail"][0]["field"] == "X-Feedback-Token"
    stolen = label(caller, other, "setosa", request_id=row)  # another answer's token
    assert stolen.status_code == 403
    assert stolen.json()["detail"][0]["field"] == "X-Feedback-Token"
    wrong_admin = caller.post(
        "/v1/feedback", json={"request_id": row, "label": "setosa"}, headers={"Authorization": f"Bearer {TOKEN}x"}
    )
    assert wrong_admin.status_code == 403
    assert logged(client, row)[row]["request_id"] == row
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.log.engine.connect() as conn:
        stored = conn.execute(sa.select(feedback_table.c.label).where(feedback_table.c.request_id == row)).all()
    assert stored == []  # the true label is still free to come
    assert label(caller, answer, "virginica", request_id=row).json()["status"] == "recorded"
    pipeline = caller.post("/v1/feedback", json={"request_id": answer["predictions"][0]["id"], "label": "setosa"},
                           headers=ADMIN)  # fmt: skip
    assert pipeline.json()["status"] == "recorded"  # a labelling pipeline uses the admin token


def test_training_and_serving_give_identical_outputs(client: TestClient, registry, params: Params) -> None:
    settings, data = registry
    frame = without_holdout(load_data(data).frame, load_holdout(settings, params).frame, params.dataset)
    trained = fit_and_evaluate(frame, params)  # the training path, refitted the same way (no holdout rows)
    X_test = trained.split.X_test
    body = client.post("/v1/predict", json={"rows": X_test.to_dict("records")}).json()
    assert [p["class"] for p in body["predictions"]] == trained.pipeline.predict(X_test).tolist()
    served = np.array([[p["probabilities"][c] for c in params.dataset.classes] for p in body["predictions"]])
    np.testing.assert_allclose(served, trained.pipeline.predict_proba(X_test), rtol=0, atol=1e-12)
    X_all, _ = split_features_target(load_data(data).frame, params.dataset)
    assert list(X_all.columns) == list(params.dataset.features)  # the contract's order is the model's order


def test_registry_outage_keeps_serving_and_reports_degraded(client: TestClient, registry) -> None:
    settings, _ = registry
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    db = settings.state / "mlflow.db"
    saved = db.with_suffix(".saved")
    shutil.copyfile(db, saved)
    now = [runtime.cache.clock()]
    runtime.cache.clock = lambda: now[0]
    try:
        db.write_bytes(b"not a database" * 100)
        runtime.poller.refresh()
        ready = client.get("/readyz")
        assert ready.status_code == 200  # cached models keep serving
        assert ready.json()["degraded"] is True
        assert "database" in ready.json()["last_registry_error"]
        assert client.post("/v1/predict", json=ROW).status_code == 200
    finally:
        shutil.copyfile(saved, db)
        now[0] = runtime.cache.health.next_attempt  # the backoff delay has passed
        runtime.poller.refresh()
    assert client.get("/readyz").json()["degraded"] is False


def test_hot_reload_under_concurrent_load_fails_no_request(client: TestClient, registry) -> None:
    settings, _ = registry
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    statuses: Counter[int] = Counter()
    versions: list[list[str]] = [[] for _ in range(4)]
    halfway = threading.Barrier(5)

    def hammer(k: int) -> None:
        for i in range(150):
            if i == 50:
                halfway.wait(timeout=60)  # everyone has served on the old model; now the alias moves
            response = client.post("/v1/predict", json=ROW, headers={"X-User-Id": f"load-{k}"})
            statuses[response.status_code] += 1
            versions[k].append(response.json().get("model_version", "?"))

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    halfway.wait(timeout=60)
    promote(settings, "tester", "hot reload under load")
    try:
        assert runtime.poller.refresh() is True  # what the poller thread does every interval
        for t in threads:
            t.join(timeout=120)
    finally:
        client_ = mlflow_client(settings)
        client_.set_registered_model_alias(settings.model_name, "champion", "1")
        client_.set_registered_model_alias(settings.model_name, "challenger", "2")
        client_.delete_registered_model_alias(settings.model_name, "previous")
        runtime.poller.refresh()
    assert statuses == Counter({200: 600})
    for seen in versions:
        assert seen[:50] == ["1"] * 50
        assert seen[-1] == "2"
        first_new = seen.index("2")
        assert set(seen[first_new:]) == {"2"}  # once swapped, never back
    metrics = client.get("/metrics").text
    assert "mlops_model_reloads_total" in metrics
    assert 'http_requests_total{method="POST",route="/v1/predict",status="200"}' in metrics
    assert 'mlops_predictions_total{arm="champion",model_version="2",predicted_class="setosa"}' in metrics
    assert re.search(
        r'^http_request_duration_seconds_bucket\{le="[^"]+",method="POST",route="/v1/predict"\}', metrics, re.M
    )
    assert 'mlops_model_info{alias="champion",runtime="onnx",version="1"} 1.0' in metrics  # a parity-checked ONNX file


def test_readyz_is_503_before_any_model_exists(tmp_path: Path, make_settings, params: Params) -> None:
    settings = make_settings(tmp_path / "empty", poll_interval_s=3600)
    with TestClient(create_app(settings, params)) as empty:
        assert empty.get("/healthz").status_code == 200
        ready = empty.get("/readyz")
        assert ready.status_code == 503
        assert (ready.json()["ready"], ready.json()["models"], ready.json()["degraded"]) == (False, {}, False)
        predict = empty.post("/v1/predict", json=ROW)
        assert predict.status_code == 503
        assert "no champion" in predict.json()["error"]


def test_a_full_disk_under_the_log_shows_on_readyz_and_metrics_and_nothing_is_lost(
    client: TestClient, registry
) -> None:
    """Item 9 of the hardening review: writes failing is degraded readiness and a 0 on /metrics, not silence."""
    from tests.sqlite_faults import full_disk

    settings, _ = registry
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.log.flush()

    def metric(name: str) -> float:
        lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(name + " ")]
        return float(lines[0].split()[1])

    assert metric("mlops_prediction_log_write_ok") == 1.0
    with full_disk(settings.state / "predictions.db") as disk:
        disk.pages = disk.pages_now()
        ids: list[str] = []
        while runtime.log.stats().write_error is None and len(ids) < 500:  # until a write no longer fits
            ids.append(f"disk-full-{len(ids)}")  # answered while the backlog has room: held in memory
            response = client.post("/v1/predict", json={"rows": [ROW]}, headers={"X-Request-Id": ids[-1]})
            assert response.status_code == 200
            runtime.log.flush(timeout=0.2)  # bounded: returns once the writer has tried
        ready = client.get("/readyz").json()
        assert ready["degraded"] is True
        assert "full" in ready["prediction_log"]["write_error"]
        assert ready["prediction_log"]["queued_rows"] > 0
        assert metric("mlops_prediction_log_write_ok") == 0.0
        assert metric("mlops_prediction_log_queued_rows") > 0
        disk.pages = None  # space again
        assert runtime.log.flush(timeout=30)
    assert client.get("/readyz").json()["degraded"] is False
    assert metric("mlops_prediction_log_write_ok") == 1.0
    assert metric("mlops_prediction_log_queued_rows") == 0
    assert set(logged(client, *ids)) == set(ids)


def test_each_rows_group_is_logged_beside_it_and_production_fairness_is_judged_from_it(
    client: TestClient, registry, params: Params
) -> None:
    from monitoring.fairness_check import check_fairness
    from pipelines.data import read_csv
    from pipelines.fair_groups import biased_rows
    from serving.log_reader import labelled_window

    settings, data = registry
    rows = biased_rows(read_csv(data), params, rows=300, seed=58, shift_cm=1.0, share_b=0.5)
    features, target, column = params.dataset.feature_names, params.dataset.target, params.dataset.group_column
    body = {"rows": [{**{f: float(r[f]) for f in features}, column: r[column]} for _, r in rows.iterrows()]}
    answer = client.post("/v1/predict", json=body, headers={"X-Request-Id": "sites-1"}).json()
    plain = client.post("/v1/predict", json={"rows": [{f: row[f] for f in features} for row in body["rows"]]}).json()
    assert [p["class"] for p in answer["predictions"]] == [p["class"] for p in plain["predictions"]]  # never scored
    for prediction, truth in zip(answer["predictions"], rows[target], strict=True):
        assert label(client, answer, truth, request_id=prediction["id"]).json()["status"] == "recorded"
    stored = logged(client, *(p["id"] for p in answer["predictions"]), plain["predictions"][0]["id"])
    assert [stored[p["id"]]["sensitive_group"] for p in answer["predictions"]] == rows[column].tolist()
    assert stored[plain["predictions"][0]["id"]]["sensitive_group"] is None  # no group sent: NULL
    assert column not in stored["sites-1:0"]["features"]  # beside the features, not among them

    labelled = labelled_window(client.app.state.runtime.log.engine, model_name=settings.model_name)  # type: ignore[attr-defined]
    finding = check_fairness(labelled[labelled["request_id"].str.startswith("sites-1:")], params, champion="1")
    assert finding.status == "fired", finding.summary  # site B's petals read 1 cm short: its virginica are missed
    groups = {g["group"]: g for g in finding.details["groups"]}
    assert groups["site-b"]["true_positive_rate"] < groups["site-a"]["true_positive_rate"]
