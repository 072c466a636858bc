"""One routing-header policy on every protocol: /v1/predict, MLflow's /invocations and Open Inference V2.

Each protocol is driven with the same headers against one app (v1 champion, v2 challenger, a 50 %
canary): a malformed ``X-Request-Id``, an over-long ``X-User-Id`` and an unknown ``X-Force-Arm`` are
client errors naming the header (in the protocol's own error body); a valid request id is the id the
answer and the prediction log carry; a user id keeps a user on one arm whichever protocol is used;
a forced arm is served by that arm, but only for the admin token (401 / 403 otherwise, and the
failures count towards the admin API's lockout), and is logged as ``forced``; a request id reused for
other features is 409 and not logged, the same features again are answered and logged once; every
answer carries a feedback token that /v1/feedback accepts. Each protocol also documents the same
three header parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.params import Params
from core.settings import Settings
from pipelines.data import ingest
from pipelines.training_steps import run_training
from serving.app import create_app
from serving.credentials import FAILED_AUTH_BURST
from serving.headers import MAX_USER_ID, REQUEST_ID_PATTERN
from serving.prediction_log import make_engine, predictions_table
from serving.router import OVERRIDES

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
OTHER_ROW = {**ROW, "petal_length": 4.7}
TOKEN = "workshop-admin-test-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
Send = Callable[..., httpx.Response]


def _v1(client: TestClient, headers: dict[str, str], row: dict[str, float] = ROW) -> httpx.Response:
    return client.post("/v1/predict", json=row, headers=headers)


def _invocations(client: TestClient, headers: dict[str, str], row: dict[str, float] = ROW) -> httpx.Response:
    return client.post("/invocations", json={"dataframe_records": [row]}, headers=headers)


def _v2(client: TestClient, headers: dict[str, str], row: dict[str, float] = ROW) -> httpx.Response:
    tensor = {"name": "features", "shape": [1, 4], "datatype": "FP64", "data": list(row.values())}
    return client.post("/v2/models/iris-classifier/infer", json={"inputs": [tensor]}, headers=headers)


PROTOCOLS: dict[str, tuple[Send, int, str]] = {  # how to send, the client-error status, the predict path
    "v1": (_v1, 422, "/v1/predict"),
    "invocations": (_invocations, 400, "/invocations"),
    "v2": (_v2, 400, "/v2/models/{name}/infer"),
}


def arm(protocol: str, response: httpx.Response) -> str:
    """Which arm answered, as each protocol says it."""
    if protocol == "v1":
        return str(response.json()["arm"])
    if protocol == "invocations":
        return response.headers["x-arm"]
    return str(response.json()["parameters"]["arm"])


def error_text(protocol: str, response: httpx.Response) -> str:
    """The client error's message, in each protocol's own body shape."""
    body = response.json()
    if protocol == "v1":
        assert {d["field"] for d in body["detail"]} <= {"X-Request-Id", "X-User-Id", "X-Force-Arm"}, body
        return str(body["error"])
    if protocol == "invocations":
        assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
        return str(body["message"])
    return str(body["error"])


@pytest.fixture(scope="module")
def app_settings(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params) -> Settings:
    root = tmp_path_factory.mktemp("routing-headers")
    settings = make_settings(root / "state", poll_interval_s=3600, admin_token=TOKEN)
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    for _ in range(2):  # v1 champion, v2 challenger
        assert run_training(settings, params, data).status == "registered"
    return settings


@pytest.fixture(scope="module")
def client(app_settings: Settings, params: Params) -> Iterator[TestClient]:
    canary = params.routing.model_copy(update={"strategy": "canary", "canary_weight": 0.5})
    with TestClient(create_app(app_settings, params.model_copy(update={"routing": canary}))) as test_client:
        yield test_client


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize(
    ("header", "value"),
    [("X-Request-Id", "has:colon"), ("X-Request-Id", "x" * 41), ("X-User-Id", "u" * (MAX_USER_ID + 1)),
     ("X-Force-Arm", "nobody")],
)  # fmt: skip
def test_a_bad_routing_header_is_a_client_error_naming_it(
    client: TestClient, protocol: str, header: str, value: str
) -> None:
    send, status, _ = PROTOCOLS[protocol]
    response = send(client, {header: value, **ADMIN})  # an operator's request: the value itself is at fault
    assert response.status_code == status, response.text
    assert header in error_text(protocol, response)


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_a_valid_request_id_is_the_id_answered_and_logged(
    client: TestClient, app_settings: Settings, protocol: str
) -> None:
    send, _, _ = PROTOCOLS[protocol]
    rid = f"hdr-{protocol}.1"
    response = send(client, {"X-Request-Id": rid})
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == rid
    app = client.app
    assert app.state.runtime.log.flush()  # type: ignore[attr-defined]
    engine = make_engine(app_settings.prediction_log_uri)
    try:
        with engine.connect() as conn:
            logged = conn.execute(
                sa.select(predictions_table.c.request_id).where(predictions_table.c.request_id == rid)
            )
            assert logged.scalars().all() == [rid]
    finally:
        engine.dispose()


def test_a_user_stays_on_one_arm_whichever_protocol_they_use(client: TestClient) -> None:
    arms: dict[str, set[str]] = {}
    for user in range(30):
        for protocol, (send, _, _) in PROTOCOLS.items():
            response = send(client, {"X-User-Id": f"user-{user}"})
            assert response.status_code == 200, response.text
            arms.setdefault(f"user-{user}", set()).add(arm(protocol, response))
    assert all(len(seen) == 1 for seen in arms.values()), arms  # sticky, and the same rule everywhere
    assert {next(iter(seen)) for seen in arms.values()} == {"champion", "challenger"}  # the 50 % split is real


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_a_forced_arm_is_served_by_that_arm(client: TestClient, protocol: str) -> None:
    send, _, _ = PROTOCOLS[protocol]
    for forced in ("challenger", "champion"):
        rid = f"forced-{protocol}-{forced}"
        response = send(
            client, {"X-Force-Arm": forced, "X-User-Id": "always-the-same-user", "X-Request-Id": rid, **ADMIN}
        )
        assert response.status_code == 200, response.text
        assert arm(protocol, response) == forced
        assert logged(client, rid) == [(rid, forced, "forced")]  # marked, so no analysis counts it


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_a_forced_arm_needs_the_admin_token(client: TestClient, protocol: str) -> None:
    send, _, _ = PROTOCOLS[protocol]
    caller = TestClient(client.app, client=(f"192.0.2.{list(PROTOCOLS).index(protocol) + 20}", 50000))
    rid = f"steer-{protocol}"
    missing = send(caller, {"X-Force-Arm": "challenger", "X-Request-Id": rid})
    assert missing.status_code == 401, missing.text
    assert "X-Force-Arm" in missing.text
    assert "Authorization" in missing.text
    wrong = send(caller, {"X-Force-Arm": "challenger", "X-Request-Id": rid, "Authorization": f"Bearer {TOKEN}x"})
    assert wrong.status_code == 403, wrong.text
    assert "X-Force-Arm" in wrong.text
    if protocol == "v1":
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert {d["field"] for d in wrong.json()["detail"]} == {"X-Force-Arm"}
    if protocol == "invocations":
        assert (missing.json()["error_code"], wrong.json()["error_code"]) == ("UNAUTHENTICATED", "PERMISSION_DENIED")
    assert logged(client, rid) == []  # refused before anything was served


def test_wrong_force_arm_tokens_share_the_admin_apis_lockout(client: TestClient) -> None:
    guesser = TestClient(client.app, client=("198.51.100.9", 50000))
    wrong = {"X-Force-Arm": "challenger", "Authorization": f"Bearer {TOKEN[:-1]}?"}
    statuses = [_v1(guesser, wrong).status_code for _ in range(FAILED_AUTH_BURST)]
    assert statuses == [403] * FAILED_AUTH_BURST
    locked = _invocations(guesser, {**wrong, "Authorization": f"Bearer {TOKEN}"})  # even the right token now
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert guesser.get("/v1/admin/state", headers=ADMIN).status_code == 429  # one budget with the admin API
    assert _v1(guesser, {}).status_code == 200  # a plain prediction needs no credentials: not locked out


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_a_request_id_names_one_request(client: TestClient, protocol: str) -> None:
    send, _, _ = PROTOCOLS[protocol]
    rid = f"reused-{protocol}"
    first = send(client, {"X-Request-Id": rid})
    retry = send(client, {"X-Request-Id": rid})  # the same features: a retry, answered
    assert (first.status_code, retry.status_code) == (200, 200), retry.text
    other = send(client, {"X-Request-Id": rid}, OTHER_ROW)
    assert other.status_code == 409, other.text
    assert "X-Request-Id" in other.text
    if protocol == "v1":
        assert [d["field"] for d in other.json()["detail"]] == ["X-Request-Id"]
    if protocol == "invocations":
        assert other.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    rows = logged(client, rid, "features")
    assert len(rows) == 1  # logged once, with the first request's features
    assert rows[0][-1]["petal_length"] == ROW["petal_length"]


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_every_answer_carries_a_feedback_token_that_labels_it(client: TestClient, protocol: str) -> None:
    send, _, _ = PROTOCOLS[protocol]
    rid = f"labelled-{protocol}"
    answer = send(client, {"X-Request-Id": rid})
    assert answer.status_code == 200, answer.text
    token = answer.headers["x-feedback-token"]
    if protocol == "v1":
        assert answer.json()["feedback_token"] == token
    if protocol == "v2":
        assert answer.json()["parameters"]["feedback_token"] == token
    other = send(client, {"X-Request-Id": f"{rid}-other"}).headers["x-feedback-token"]
    assert other != token
    assert client.app.state.runtime.log.flush()  # type: ignore[attr-defined]
    feedback = {"request_id": rid, "label": "setosa"}
    assert client.post("/v1/feedback", json=feedback, headers={"X-Feedback-Token": other}).status_code == 403
    recorded = client.post("/v1/feedback", json=feedback, headers={"X-Feedback-Token": token})
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["status"] == "recorded"


def logged(client: TestClient, rid: str, *extra: str) -> list[tuple[Any, ...]]:
    """The prediction log's rows for ``rid``: (request id, arm, strategy, *extra columns)."""
    assert client.app.state.runtime.log.flush()  # type: ignore[attr-defined]
    p = predictions_table.c
    engine = client.app.state.runtime.log.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        query = sa.select(p.request_id, p.arm, p.strategy, *(p[c] for c in extra)).where(p.request_id == rid)
        return [tuple(row) for row in conn.execute(query)]


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_every_protocol_documents_the_same_routing_headers(client: TestClient, protocol: str) -> None:
    path = PROTOCOLS[protocol][2]
    operation: dict[str, Any] = client.app.openapi()["paths"][path]["post"]  # type: ignore[attr-defined]
    documented = {p["name"]: p["schema"] for p in operation["parameters"] if p["in"] == "header"}
    assert documented == {
        "x-request-id": {"type": "string", "pattern": REQUEST_ID_PATTERN},
        "x-user-id": {"type": "string", "maxLength": MAX_USER_ID},
        "x-force-arm": {"type": "string", "enum": list(OVERRIDES)},
    }


def test_a_version_pinned_request_is_logged_as_pinned(client: TestClient) -> None:
    tensor = {"name": "features", "shape": [1, 4], "datatype": "FP64", "data": list(ROW.values())}
    rid = "pinned-v2"
    response = client.post(
        "/v2/models/iris-classifier/versions/2/infer", json={"inputs": [tensor]}, headers={"X-Request-Id": rid}
    )
    assert response.status_code == 200, response.text
    assert response.json()["parameters"]["strategy"] == "pinned"
    assert logged(client, rid) == [(rid, "challenger", "pinned")]  # chose its model: no analysis counts it
