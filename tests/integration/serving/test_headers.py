"""One routing-header policy on every protocol: /v1/predict, MLflow's /invocations and Open Inference V2.

Each protocol is driven with the same headers against one app (v1 champion, v2 challenger, a 50 %
canary): a malformed ``X-Request-Id``, an over-long ``X-User-Id`` and an unknown ``X-Force-Arm`` are
client errors naming the header (in the protocol's own error body); a valid request id is the id the
answer and the prediction log carry; a user id keeps a user on one arm whichever protocol is used;
a forced arm is served by that arm. Each protocol also documents the same three header parameters.
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
from serving.headers import MAX_USER_ID, REQUEST_ID_PATTERN
from serving.prediction_log import make_engine, predictions_table
from serving.router import OVERRIDES

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
Send = Callable[[TestClient, dict[str, str]], httpx.Response]


def _v1(client: TestClient, headers: dict[str, str]) -> httpx.Response:
    return client.post("/v1/predict", json=ROW, headers=headers)


def _invocations(client: TestClient, headers: dict[str, str]) -> httpx.Response:
    return client.post("/invocations", json={"dataframe_records": [ROW]}, headers=headers)


def _v2(client: TestClient, headers: dict[str, str]) -> httpx.Response:
    tensor = {"name": "features", "shape": [1, 4], "datatype": "FP64", "data": list(ROW.values())}
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
    settings = make_settings(root / "state", poll_interval_s=3600)
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
    response = send(client, {header: value})
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
        response = send(client, {"X-Force-Arm": forced, "X-User-Id": "always-the-same-user"})
        assert response.status_code == 200, response.text
        assert arm(protocol, response) == forced


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
