"""The admin API and the request limits end to end: real registry, real state store, the app's lifespan.

One registry per module (v1 champion, v2 challenger, trained by the real training path). Tests that
change routing, aliases or the rollout use the `restored` fixture, which puts all three back.
Apps that only need their middleware (limits, CORS, disabled admin) are created without a lifespan.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.app import app as cli
from core.mlflow_config import mlflow_client
from core.params import Params
from core.settings import Settings
from pipelines.data import ingest
from pipelines.registry import current_aliases
from pipelines.training_steps import run_training
from serving.app import create_app
from serving.rollout import RolloutState
from serving.router import RoutingState, bucket
from tests.live_server import served_on_loopback

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
TOKEN = "admin-test-token-4f9c2b7e1d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
REASON = {"reason": "test"}
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/state", None),
    ("PUT", "/strategy", {"strategy": "shadow"}),
    ("PUT", "/weights", {"canary_weight": 0.5}),
    ("POST", "/blue-green/switch", None),
    ("POST", "/promote", REASON),
    ("POST", "/rollback", REASON),
    ("POST", "/rollout/start", None),
    ("POST", "/rollout/pause", REASON),
    ("POST", "/rollout/resume", REASON),
    ("POST", "/rollout/abort", REASON),
    ("POST", "/approval/request", REASON),
    ("POST", "/approval/approve", REASON),
    ("POST", "/approval/reject", REASON),
]
ENDPOINT_IDS = [f"{method} {path}" for method, path, _ in ENDPOINTS]
DECISION_TAGS = {"approval", "approval_requested_by", "approval_requested_at", "approval_request_reason"}
DECISION_TAGS |= {"approved_by", "approved_at", "approval_reason", "rejected_by", "rejected_at", "rejection_reason"}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params) -> Settings:
    root = tmp_path_factory.mktemp("admin")
    built = make_settings(root / "state", poll_interval_s=3600, admin_token=TOKEN)  # tests drive the poller
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    for _ in range(2):  # v1 champion, v2 challenger
        assert run_training(built, params, data).status == "registered"
    return built


@pytest.fixture(scope="module")
def client(settings: Settings, params: Params) -> Iterator[TestClient]:
    with TestClient(create_app(settings, params)) as test_client:  # `with`: the lifespan runs
        yield test_client


@pytest.fixture
def restored(client: TestClient, settings: Settings, params: Params) -> Iterator[TestClient]:
    """Yield the client; afterwards: v1 champion, v2 candidate challenger, default routing, idle rollout."""
    yield client
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    registry = mlflow_client(settings)
    registry.set_registered_model_alias(settings.model_name, "champion", "1")
    registry.set_registered_model_alias(settings.model_name, "challenger", "2")
    if "previous" in current_aliases(settings):
        registry.delete_registered_model_alias(settings.model_name, "previous")
    registry.set_model_version_tag(settings.model_name, "2", "status", "candidate")
    for key in set(registry.get_model_version(settings.model_name, "2").tags) & DECISION_TAGS:
        registry.delete_model_version_tag(settings.model_name, "2", key)
    runtime.store.update_routing(lambda _: RoutingState.from_params(params.routing))
    runtime.store.put_rollout(RolloutState())
    runtime.poller.refresh()


def admin(client: TestClient, method: str, path: str, body: Any = None, **headers: str) -> Any:
    return client.request(method, f"/v1/admin{path}", json=body, headers={**AUTH, **headers})


def predict(client: TestClient, user: str) -> dict[str, Any]:
    response = client.post("/v1/predict", json=ROW, headers={"X-User-Id": user})
    assert response.status_code == 200, response.text
    return response.json()


# ---- authentication ------------------------------------------------------------------------------


def test_the_endpoint_list_covers_every_admin_route(client: TestClient) -> None:
    documented = {
        (method.upper(), path.removeprefix("/v1/admin"))
        for path, operations in client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
        if path.startswith("/v1/admin")
        for method in operations
    }
    templates = {"pause": "/rollout/{operation}", "resume": "/rollout/{operation}", "abort": "/rollout/{operation}"}
    templates |= dict.fromkeys(("request", "approve", "reject"), "/approval/{decision}")
    listed = {(m, templates.get(p.split("/")[-1], p)) for m, p, _ in ENDPOINTS}
    assert documented == listed


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_every_endpoint_needs_the_right_token(client: TestClient, method: str, path: str, body: Any) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    version = runtime.store.routing().version
    # Each endpoint's wrong tokens come from an address of its own, below the failed-authentication lockout.
    client = TestClient(client.app, client=(f"192.0.2.{ENDPOINT_IDS.index(f'{method} {path}') + 1}", 50000))
    url = f"/v1/admin{path}"
    missing = client.request(method, url, json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["detail"][0]["field"] == "Authorization"
    basic = client.request(method, url, json=body, headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401  # not a bearer token
    wrong = client.request(method, url, json=body, headers={"Authorization": f"Bearer {TOKEN}x"})
    assert wrong.status_code == 403
    assert "wrong token" in wrong.json()["error"]
    invalid_and_wrong = client.request(method, url, json={"nonsense": 1}, headers={"Authorization": "Bearer no"})
    assert invalid_and_wrong.status_code == 403  # auth is checked before the body is validated
    assert runtime.store.routing().version == version  # nothing changed
    assert current_aliases(runtime.settings) == {"champion": "1", "challenger": "2"}


BAD_BODIES = {
    "malformed JSON": b'{"strategy": ',
    "not UTF-8": b"\xff\xfe\x00garbage",
    "not JSON at all": b"strategy=shadow",
}


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_the_token_is_checked_before_the_body_is_parsed(
    client: TestClient, settings: Settings, method: str, path: str, body: Any
) -> None:
    # Its own address per endpoint, below the failed-authentication lockout (the wrong tokens count).
    client = TestClient(client.app, client=(f"192.0.2.{100 + ENDPOINT_IDS.index(f'{method} {path}')}", 50000))
    url, json_type = f"/v1/admin{path}", {"Content-Type": "application/json"}
    oversized = b"x" * (settings.max_body_bytes + 1)
    for name, content in {**BAD_BODIES, "over MLOPS_MAX_BODY_BYTES": oversized}.items():
        for streamed in (False, True):  # with Content-Length, and chunked
            sent = iter([content]) if streamed else content
            missing = client.request(method, url, content=sent, headers=json_type)
            assert missing.status_code == 401, (name, streamed, missing.text)
            assert missing.headers["www-authenticate"].startswith("Bearer")
            assert missing.json()["error"].startswith("admin API needs the header Authorization")
            assert [d["field"] for d in missing.json()["detail"]] == ["Authorization"]
        wrong = client.request(method, url, content=content, headers={**json_type, "Authorization": "Bearer wrong"})
        assert (wrong.status_code, wrong.json()["detail"][0]["field"]) == (403, "Authorization"), name
    # With the right token the body is judged as before: the documented 422 naming it.
    if body is not None:
        judged = client.request(method, url, content=BAD_BODIES["malformed JSON"], headers={**json_type, **AUTH})
        assert (judged.status_code, judged.json()["detail"][0]["field"]) == (422, "body")


def test_a_guessing_client_is_locked_out_before_its_token_is_compared(client: TestClient) -> None:
    from serving.credentials import FAILED_AUTH_BURST

    guesser = TestClient(client.app, client=("198.51.100.7", 50000))  # the same running app, another address
    wrong = {"Authorization": f"Bearer {TOKEN[:-1]}?"}
    statuses = [guesser.get("/v1/admin/state", headers=wrong).status_code for _ in range(FAILED_AUTH_BURST)]
    assert statuses == [403] * FAILED_AUTH_BURST
    locked = guesser.get("/v1/admin/state", headers=wrong)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert guesser.get("/v1/admin/state", headers=AUTH).status_code == 429  # even the right token: no oracle
    assert admin(client, "GET", "/state").status_code == 200  # other clients are not affected


@pytest.mark.parametrize("token", ["short", "fifteen-chars!!"])
def test_a_guessable_token_stops_the_service_at_start_up(
    tmp_path: Path, make_settings, params: Params, token: str
) -> None:
    from typer.testing import CliRunner

    from cli.app import app
    from serving.admin import WeakAdminTokenError

    with pytest.raises(WeakAdminTokenError, match=f"has {len(token)} characters; it needs at least 16") as refused:
        create_app(make_settings(tmp_path / "weak", admin_token=token), params)
    assert token not in str(refused.value)
    result = CliRunner().invoke(app, ["serve", "--port", "0"], env={"MLOPS_ADMIN_TOKEN": token, "COLUMNS": "300"})
    assert result.exit_code == 2
    assert "it needs at least 16" in result.output
    assert token not in result.output


@pytest.mark.parametrize("token", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_admin_api_is_absent_without_a_token(tmp_path: Path, make_settings, params: Params, token: str | None) -> None:
    app = create_app(make_settings(tmp_path / "off", admin_token=token), params)
    assert not [p for p in app.openapi()["paths"] if p.startswith("/v1/admin")]
    client = TestClient(app)  # no lifespan needed: the routes are not there at all
    for method, path, body in ENDPOINTS:
        response = client.request(method, f"/v1/admin{path}", json=body, headers=AUTH)
        assert response.status_code == 404, (method, path)


# ---- routing ---------------------------------------------------------------------------------------


def test_state_shows_routing_rollout_aliases_and_what_is_loaded(client: TestClient) -> None:
    state = admin(client, "GET", "/state").json()
    assert state["routing"]["strategy"] == "canary"
    assert state["rollout"]["status"] == "idle"
    assert state["aliases"] == {"champion": "1", "challenger": "2"}
    assert state["loaded"] == {"champion": "1", "challenger": "2"}


def test_weight_change_is_served_at_once_and_reaches_a_second_instance_on_refresh(
    restored: TestClient, settings: Settings, params: Params
) -> None:
    users = [f"user-{i}" for i in range(150)]
    with TestClient(create_app(settings, params)) as second:  # another worker/replica on the same store
        assert {predict(restored, u)["arm"] for u in users} == {"champion"}

        changed = admin(restored, "PUT", "/weights", {"canary_weight": 0.3}, **{"X-Actor": "alice"})
        assert changed.status_code == 200
        assert changed.json()["routing"]["canary_weight"] == 0.3

        expected = {u: "challenger" if bucket(u) < 0.3 else "champion" for u in users}
        assert 0.2 < sum(a == "challenger" for a in expected.values()) / len(users) < 0.4
        assert {u: predict(restored, u)["arm"] for u in users} == expected  # this worker: the next request
        assert {predict(second, u)["arm"] for u in users} == {"champion"}  # the other: not polled yet
        second.app.state.runtime.poller.refresh()  # type: ignore[attr-defined]  # its next poll
        assert {u: predict(second, u)["arm"] for u in users} == expected


def test_strategy_and_weights_are_validated_naming_the_field(restored: TestClient) -> None:
    cases = [
        ("/strategy", {"strategy": "purple"}, "strategy"),
        ("/strategy", {}, "strategy"),
        ("/weights", {"canary_weight": 1.5}, "canary_weight"),
        ("/weights", {"ab_split": "0.5"}, "ab_split"),
        ("/weights", {"canary_weight": True}, "canary_weight"),
        ("/weights", {}, "body"),
        ("/weights", {"canary_weight": 0.1, "extra": 1}, "extra"),
    ]
    for path, body, field in cases:
        response = admin(restored, "PUT", path, body)
        assert response.status_code == 422, (path, body)
        assert [d["field"] for d in response.json()["detail"]] == [field], (path, body)
    shadow = admin(restored, "PUT", "/strategy", {"strategy": "shadow"})
    assert (shadow.status_code, shadow.json()["message"]) == (200, "strategy is now shadow")
    assert predict(restored, "someone")["strategy"] == "shadow"
    split = admin(restored, "PUT", "/weights", {"ab_split": 0.2}).json()["routing"]
    assert (split["ab_split"], split["canary_weight"]) == (0.2, 0.0)  # the other weight is untouched


def test_blue_green_switch_is_atomic_under_concurrent_load(restored: TestClient) -> None:
    refused = admin(restored, "POST", "/blue-green/switch")
    assert refused.status_code == 409
    assert "PUT /v1/admin/strategy" in refused.json()["error"]
    assert admin(restored, "PUT", "/strategy", {"strategy": "blue_green"}).status_code == 200
    served: list[list[tuple[int, str, str]]] = [[] for _ in range(4)]
    halfway, switched = threading.Barrier(5), threading.Event()

    def hammer(k: int) -> None:
        def send(i: int) -> None:
            r = restored.post("/v1/predict", json=ROW, headers={"X-User-Id": f"bg-{k}-{i}"})
            body = r.json()
            served[k].append((r.status_code, body.get("arm", "?"), body.get("model_version", "?")))

        for i in range(15):  # before the switch
            send(i)
        halfway.wait(timeout=60)
        i = 15
        while not switched.is_set() and i < 5000:  # during the switch
            send(i)
            i += 1
        for j in range(10):  # after it
            send(i + j)

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    halfway.wait(timeout=60)
    switch = admin(restored, "POST", "/blue-green/switch")
    switched.set()
    for t in threads:
        t.join(timeout=120)
    assert switch.status_code == 200
    assert switch.json()["message"] == "active slot is now green (challenger)"
    blue, green = (200, "champion", "1"), (200, "challenger", "2")
    for seen in served:
        assert set(seen) <= {blue, green}  # every answer from one slot or the other, never an error
        assert seen[:15] == [blue] * 15
        assert seen[-10:] == [green] * 10
        first_green = seen.index(green)
        assert set(seen[first_green:]) == {green}  # once switched, never back
    back = admin(restored, "POST", "/blue-green/switch")
    assert back.json()["routing"]["active_slot"] == "blue"
    assert predict(restored, "after-switch-back")["model_version"] == "1"


# ---- registry ---------------------------------------------------------------------------------------


def test_promote_and_rollback_move_the_aliases_and_what_is_served(restored: TestClient, settings: Settings) -> None:
    registry = mlflow_client(settings)
    assert admin(restored, "POST", "/promote", {}).json()["detail"][0]["field"] == "reason"
    assert admin(restored, "POST", "/promote", {"reason": "ok"}, **{"X-Actor": "not valid!"}).status_code == 422
    assert admin(restored, "PUT", "/weights", {"canary_weight": 0.5}).status_code == 200

    promoted = admin(restored, "POST", "/promote", {"reason": "better offline"}, **{"X-Actor": "alice"})
    assert promoted.status_code == 200, promoted.text
    body = promoted.json()
    assert body["message"] == "promoted v2 to champion (was v1)"
    assert body["aliases"] == {"champion": "2", "previous": "1"}
    assert body["loaded"] == {"champion": "2"}  # this worker reloaded at once
    assert body["routing"]["canary_weight"] == 0.0  # no challenger left to canary
    assert predict(restored, "u1")["model_version"] == "2"
    tags = registry.get_model_version(settings.model_name, "2").tags
    assert (tags["promoted_by"], tags["promotion_reason"]) == ("alice", "better offline")

    again = admin(restored, "POST", "/promote", REASON)
    assert again.status_code == 409
    assert "no challenger" in again.json()["error"]

    rolled = admin(restored, "POST", "/rollback", {"reason": "complaints"})
    assert rolled.status_code == 200
    assert rolled.json()["aliases"] == {"champion": "1"}
    assert predict(restored, "u1")["model_version"] == "1"
    tags = registry.get_model_version(settings.model_name, "2").tags
    assert (tags["rolled_back_by"], tags["rollback_reason"]) == ("admin-api", "complaints")
    assert admin(restored, "POST", "/rollback", REASON).status_code == 409  # one level of undo


def test_rollout_start_pause_resume_abort(restored: TestClient, settings: Settings, params: Params) -> None:
    idle = admin(restored, "POST", "/rollout/pause", REASON)
    assert idle.status_code == 409
    assert "idle" in idle.json()["error"]
    assert admin(restored, "POST", "/rollout/stop", REASON).status_code == 422

    started = admin(restored, "POST", "/rollout/start")
    assert started.status_code == 200, started.text
    first = params.rollout.steps[0] / 100
    assert (started.json()["rollout"]["status"], started.json()["routing"]["canary_weight"]) == ("running", first)
    assert admin(restored, "POST", "/rollout/start").status_code == 409  # one at a time
    manual = admin(restored, "POST", "/promote", REASON)
    assert manual.status_code == 409
    assert "rollout/abort" in manual.json()["error"]

    paused = admin(restored, "POST", "/rollout/pause", {"reason": "investigating"}).json()
    assert (paused["rollout"]["status"], paused["routing"]["paused"], paused["routing"]["canary_weight"]) == (
        "paused",
        True,
        first,  # a pause holds the weight
    )
    resumed = admin(restored, "POST", "/rollout/resume", {"reason": "fine"}).json()
    assert (resumed["rollout"]["status"], resumed["routing"]["paused"]) == ("running", False)

    aborted = admin(restored, "POST", "/rollout/abort", {"reason": "manual stop"}, **{"X-Actor": "bob"}).json()
    assert (aborted["rollout"]["status"], aborted["routing"]["canary_weight"]) == ("aborted", 0.0)
    assert aborted["rollout"]["history"][-1]["actor"] == "bob"
    tags = mlflow_client(settings).get_model_version(settings.model_name, "2").tags
    assert (tags["status"], tags["rejection_reason"]) == ("rejected", "manual stop")


def test_production_mode_approval_through_the_api(restored: TestClient, settings: Settings, params: Params) -> None:
    """A canary awaiting approval: promote is refused, so is the starter's own approval; another person's promotes."""
    from pipelines.registry import request_approval
    from serving.rollout import RolloutEvent
    from serving.router import with_weight

    production = settings.model_copy(update={"approval": "required"})
    runtime = restored.app.state.runtime  # type: ignore[attr-defined]
    at = datetime.now(UTC)
    start = RolloutEvent(at, "start", 0.1, "canary of v2", "alice")
    runtime.store.put_rollout(RolloutState("awaiting_approval", "2", 3, 1.0, at, at, (start,)))
    runtime.store.update_routing(lambda r: with_weight(r, 1.0))  # the canary holds its share while it waits
    request_approval(production, "rollout-controller", "all steps passed", requester="alice")
    with TestClient(create_app(production, params)) as prod:
        approval = admin(prod, "GET", "/state").json()["approval"]
        assert {k: approval[k] for k in ("mode", "awaiting", "version", "approval")} == {
            "mode": "required",
            "awaiting": "2",
            "version": "2",
            "approval": "pending",
        }
        assert approval["approval_requested_by"] == "alice"
        promote = admin(prod, "POST", "/promote", REASON, **{"X-Actor": "alice"})
        assert promote.status_code == 409
        assert "approve it (POST /approval/approve)" in promote.json()["error"]
        own = admin(prod, "POST", "/approval/approve", {"reason": "mine"}, **{"X-Actor": "alice"})
        assert own.status_code == 409
        assert "'alice' requested the approval of v2 and cannot approve it too" in own.json()["error"]
        assert runtime.store.rollout().status == "awaiting_approval"
        assert current_aliases(settings)["champion"] == "1"
        approved = admin(prod, "POST", "/approval/approve", {"reason": "reviewed"}, **{"X-Actor": "bob"})
        assert approved.status_code == 200, approved.text
        body = approved.json()
        assert body["aliases"] == {"champion": "2", "previous": "1"}
        assert (body["rollout"]["status"], body["routing"]["canary_weight"]) == ("promoted", 0.0)
        assert body["approval"] == {"mode": "required"}  # no challenger left
        assert body["message"].startswith("approved by bob")
    tags = mlflow_client(settings).get_model_version(settings.model_name, "2").tags
    assert (tags["approval"], tags["approved_by"], tags["approval_requested_by"]) == ("approved", "bob", "alice")


# ---- limits ------------------------------------------------------------------------------------------


def test_oversized_bodies_are_413_with_or_without_content_length(client: TestClient, settings: Settings) -> None:
    limit = settings.max_body_bytes
    big = b"x" * (limit + 1)
    declared = client.post("/v1/predict", content=big, headers={"Content-Type": "application/json"})
    streamed = client.post("/v1/predict", content=iter([big]), headers={"Content-Type": "application/json"})
    csv = client.post("/invocations", content=iter([big]), headers={"Content-Type": "text/csv"})
    for response in (declared, streamed, csv):
        assert response.status_code == 413
        assert response.json()["detail"][0]["limit"] == limit
        assert f"{limit} bytes" in response.json()["error"]
    assert "transfer-encoding" in streamed.request.headers
    assert 'status="413"' in client.get("/metrics").text  # refusals are visible to monitoring
    assert client.post("/v1/predict", json=ROW).status_code == 200


def test_rate_limit_is_429_with_retry_after_and_never_5xx(tmp_path: Path, make_settings, params: Params) -> None:
    settings = make_settings(tmp_path / "rl", rate_limit_per_s=0.01, rate_limit_burst=5)
    client = TestClient(create_app(settings, params))
    statuses = [client.get("/healthz").status_code for _ in range(12)]
    assert statuses == [200] * 5 + [429] * 7
    limited = client.post("/v1/predict", json=ROW)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 100  # one token takes 100 s at 0.01/s
    assert limited.json()["detail"][0]["field"] == "client"


def test_cors_is_off_by_default_and_on_for_configured_origins(
    client: TestClient, tmp_path: Path, make_settings, params: Params
) -> None:
    origin = "https://ui.example"
    preflight = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-user-id",
    }
    assert "access-control-allow-origin" not in client.options("/v1/predict", headers=preflight).headers
    assert "access-control-allow-origin" not in client.get("/healthz", headers={"Origin": origin}).headers

    settings = make_settings(tmp_path / "cors", cors_origins=[origin], rate_limit_per_s=0.01, rate_limit_burst=2)
    browser = TestClient(create_app(settings, params))
    allowed = browser.options("/v1/predict", headers=preflight)
    assert (allowed.status_code, allowed.headers["access-control-allow-origin"]) == (200, origin)
    assert "x-user-id" in allowed.headers["access-control-allow-headers"].lower()
    other = browser.options("/v1/predict", headers={**preflight, "Origin": "https://evil.example"})
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    simple = [browser.get("/healthz", headers={"Origin": origin}) for _ in range(3)]
    assert [r.status_code for r in simple] == [200, 200, 429]  # preflights did not use up the bucket
    assert all(r.headers["access-control-allow-origin"] == origin for r in simple)  # a browser can read the 429
    assert "retry-after" in simple[-1].headers["access-control-expose-headers"].lower()


# ---- over real HTTP: uvicorn on loopback and the `mlops-lab admin` CLI ---------------------------------


@pytest.fixture(scope="module")
def api_url(client: TestClient) -> Iterator[str]:
    """The module's app (lifespan already running) also served by uvicorn on a loopback port."""
    with served_on_loopback(client.app) as url:
        yield url


def test_real_http_413_for_a_chunked_upload_keeps_the_server_healthy(api_url: str) -> None:
    import httpx

    with httpx.Client(base_url=api_url, timeout=30) as http:
        chunk = b"x" * 65536
        upload = http.post("/v1/predict", content=iter([chunk] * 20), headers={"Content-Type": "application/json"})
        assert upload.status_code == 413
        assert http.post("/v1/predict", json=ROW).status_code == 200  # same client, next request fine


def test_admin_cli_over_http(api_url: str, restored: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.setenv("MLOPS_API_URL", api_url)
    monkeypatch.setenv("MLOPS_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("MLOPS_ACTOR", "carol at desk")
    state = runner.invoke(cli, ["admin", "state"])
    assert state.exit_code == 0, state.output
    assert "registry aliases: challenger v2, champion v1" in state.output
    assert "this worker serves: challenger v2, champion v1" in state.output

    weights = runner.invoke(cli, ["admin", "weights", "--canary", "0.2"])
    assert weights.exit_code == 0, weights.output
    assert "canary weight 0.2, A/B split 0.5" in weights.output
    assert restored.app.state.runtime.routing.current().canary_weight == 0.2  # type: ignore[attr-defined]

    as_json = runner.invoke(cli, ["admin", "--json", "state"])
    assert json.loads(as_json.output)["routing"]["canary_weight"] == 0.2

    not_blue_green = runner.invoke(cli, ["admin", "switch"])
    assert not_blue_green.exit_code == 1
    assert "409" in not_blue_green.output
    assert "not blue_green" in not_blue_green.output

    started = runner.invoke(cli, ["admin", "rollout", "start"])
    assert started.exit_code == 0, started.output
    aborted = runner.invoke(cli, ["admin", "rollout", "abort", "--reason", "cli test"])
    assert aborted.exit_code == 0, aborted.output
    assert "rollout: aborted" in aborted.output
    entry = restored.app.state.runtime.store.rollout().history[-1]  # type: ignore[attr-defined]
    assert (entry.event, entry.actor) == ("abort", "carol_at_desk")

    monkeypatch.setenv("MLOPS_ADMIN_TOKEN", "wrong")
    wrong = runner.invoke(cli, ["admin", "state"])
    assert wrong.exit_code == 1
    assert "403" in wrong.output


def registry_cli(settings: Settings, actor: str) -> CliRunner:
    """`mlops-lab registry ...` on the module's registry (not through the service), acting as ``actor``."""
    env = {"MLOPS_PROJECT_DIR": str(REPO), "MLOPS_STATE_DIR": str(settings.state), "MLOPS_ACTOR": actor}
    return CliRunner(env=env | {"MLOPS_MODEL_NAME": settings.model_name, "COLUMNS": "300"})


def test_a_plain_get_state_shows_an_approval_requested_from_the_registry_cli(
    restored: TestClient, settings: Settings
) -> None:
    before = admin(restored, "GET", "/state").json()["approval"]
    assert before == {"mode": "automatic", "version": "2"}  # the challenger, no request yet
    asked = registry_cli(settings, "alice").invoke(cli, ["registry", "request-approval", "--reason", "from a shell"])
    assert asked.exit_code == 0, asked.output
    approval = admin(restored, "GET", "/state").json()["approval"]  # no registry action through the API since
    assert (approval["version"], approval["approval"], approval["approval_requested_by"]) == ("2", "pending", "alice")


def admin_cli(url: str, actor: str) -> CliRunner:
    """`mlops-lab admin ...` against the service at ``url`` with the admin token, acting as ``actor``."""
    env = {"MLOPS_API_URL": url, "MLOPS_ADMIN_TOKEN": TOKEN, "MLOPS_ACTOR": actor, "COLUMNS": "300"}
    return CliRunner(env=env)


@pytest.fixture
def production_url(restored: TestClient, settings: Settings, params: Params) -> Iterator[str]:
    """The module's registry served in production mode (MLOPS_APPROVAL=required) by uvicorn on loopback."""
    production = settings.model_copy(update={"approval": "required"})
    with TestClient(create_app(production, params)) as prod, served_on_loopback(prod.app) as url:
        yield url


def _decisions(settings: Settings, since: int) -> list[tuple[str, str]]:
    from pipelines.registry import audit_log

    return [(e.actor, e.action) for e in audit_log(settings)[since:] if e.alias == "challenger"]


def test_admin_approval_cli_over_http_refuses_a_self_approval_and_promotes_on_another_persons(
    production_url: str, settings: Settings
) -> None:
    from pipelines.registry import audit_log

    alice, bob = admin_cli(production_url, "alice"), admin_cli(production_url, "bob")
    since = len(audit_log(settings))
    asked = alice.invoke(cli, ["admin", "approval", "request", "--reason", "canary report attached"])
    assert asked.exit_code == 0, asked.output
    assert "approval of v2 requested by alice" in asked.stdout
    assert "approval: mode required, version 2, approval pending, approval_requested_by alice" in asked.stdout

    own = alice.invoke(cli, ["admin", "approval", "approve", "--reason", "mine"])
    assert own.exit_code == 1
    assert "error: 409: 'alice' requested the approval of v2 and cannot approve it too" in own.stderr
    assert "Traceback" not in own.output
    assert current_aliases(settings) == {"champion": "1", "challenger": "2"}  # nothing changed

    approved = bob.invoke(cli, ["admin", "approval", "approve", "--reason", "read the report"])
    assert approved.exit_code == 0, approved.output
    assert "approved by bob" in approved.stdout
    assert "registry aliases: champion v2, previous v1" in approved.stdout
    assert current_aliases(settings) == {"champion": "2", "previous": "1"}
    assert _decisions(settings, since) == [("alice", "request_approval"), ("bob", "approve"), ("bob", "promote")]
    tags = mlflow_client(settings).get_model_version(settings.model_name, "2").tags
    assert (tags["approval_requested_by"], tags["approved_by"], tags["approval_reason"]) == (
        "alice",
        "bob",
        "read the report",
    )


def test_admin_approval_cli_over_http_rejects(production_url: str, settings: Settings) -> None:
    from pipelines.registry import audit_log

    since = len(audit_log(settings))
    asked = admin_cli(production_url, "alice").invoke(cli, ["admin", "approval", "request", "--reason", "please"])
    assert asked.exit_code == 0, asked.output
    rejected = admin_cli(production_url, "bob").invoke(
        cli, ["admin", "approval", "reject", "--reason", "fairness gap too wide"]
    )
    assert rejected.exit_code == 0, rejected.output
    assert "rejected by bob" in rejected.stdout
    assert "approval rejected" in rejected.stdout
    tags = mlflow_client(settings).get_model_version(settings.model_name, "2").tags
    assert (tags["status"], tags["approval"], tags["rejected_by"], tags["rejection_reason"]) == (
        "rejected",
        "rejected",
        "bob",
        "fairness gap too wide",
    )
    assert current_aliases(settings)["champion"] == "1"
    assert _decisions(settings, since) == [("alice", "request_approval"), ("bob", "reject")]
    again = admin_cli(production_url, "carol").invoke(cli, ["admin", "approval", "approve", "--reason", "overrule"])
    assert again.exit_code == 1
    assert "is rejected: it never goes out again" in again.stderr


def test_a_registry_outage_is_a_503_for_actions_and_a_degraded_state_not_a_500(
    client: TestClient, settings: Settings
) -> None:
    import shutil

    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    db = settings.state / "mlflow.db"
    saved = db.with_suffix(".admin-saved")
    shutil.copyfile(db, saved)
    try:
        known = client.get("/v1/admin/state", headers=AUTH).json()["aliases"]
        db.write_bytes(b"not a database" * 100)  # the registry's database is gone
        runtime.cache.refresh()  # the poller's next model refresh fails
        state = client.get("/v1/admin/state", headers=AUTH)
        assert state.status_code == 200  # routing and rollout state still come from the shared store
        assert state.json()["aliases"] == known  # as last read
        assert state.json()["approval"] == {"mode": "automatic"}  # a registry known to be down is not read
        assert "DatabaseError" in state.json()["registry_error"]
        promote = client.post("/v1/admin/promote", headers=AUTH, json={"reason": "during an outage"})
        assert promote.status_code == 503
        assert "registry unreachable" in promote.json()["error"]
    finally:
        shutil.copyfile(saved, db)
    runtime.cache.refresh()  # the next refresh, without waiting out the backoff
    back = client.get("/v1/admin/state", headers=AUTH).json()
    assert back["registry_error"] is None
    assert back["aliases"]


# ---- personal approval tokens (MLOPS_APPROVER_TOKENS) --------------------------------------------

ALICE_TOKEN, BOB_TOKEN = "alice-approval-test-token-0001", "bob-approval-test-token-00002"


@pytest.fixture
def personal(restored: TestClient, settings: Settings, params: Params) -> Iterator[TestClient]:
    """The module's registry served in production mode with personal approval tokens for alice and bob."""
    people = settings.model_copy(
        update={"approval": "required", "approver_tokens": {"alice": ALICE_TOKEN, "bob": BOB_TOKEN}}
    )
    with TestClient(create_app(people, params), client=("192.0.2.200", 50000)) as client:
        yield client


def approval(client: TestClient, decision: str, token: str, **headers: str) -> Any:
    auth = {"Authorization": f"Bearer {token}", **headers}
    return client.post(f"/v1/admin/approval/{decision}", json={"reason": f"{decision} test"}, headers=auth)


def test_with_personal_tokens_the_actor_is_the_tokens_owner_and_the_admin_token_cannot_approve(
    personal: TestClient, settings: Settings
) -> None:
    from pipelines.registry import audit_log

    since = len(audit_log(settings))
    shared = approval(personal, "request", TOKEN, **{"X-Actor": "alice"})
    assert shared.status_code == 403
    assert "the shared admin token cannot ask for or answer an approval" in shared.json()["error"]
    asked = approval(personal, "request", ALICE_TOKEN)
    assert asked.status_code == 200, asked.text
    assert asked.json()["approval"]["approval_requested_by"] == "alice"
    assert asked.json()["approval"]["approvers"] == "personal tokens (MLOPS_APPROVER_TOKENS)"
    posing = approval(personal, "approve", ALICE_TOKEN, **{"X-Actor": "bob"})  # alice naming herself bob
    assert posing.status_code == 403
    assert posing.json()["detail"][0]["field"] == "X-Actor"
    own = approval(personal, "approve", ALICE_TOKEN)
    assert own.status_code == 409
    assert "'alice' requested the approval of v2 and cannot approve it too" in own.json()["error"]
    elsewhere = personal.put(
        "/v1/admin/weights", json={"canary_weight": 0.5}, headers={"Authorization": f"Bearer {BOB_TOKEN}"}
    )
    assert elsewhere.status_code == 403  # a personal token opens the approval routes only
    assert current_aliases(settings) == {"champion": "1", "challenger": "2"}  # nothing changed so far
    approved = approval(personal, "approve", BOB_TOKEN)
    assert approved.status_code == 200, approved.text
    assert current_aliases(settings) == {"champion": "2", "previous": "1"}
    assert _decisions(settings, since) == [("alice", "request_approval"), ("bob", "approve"), ("bob", "promote")]


def test_the_approval_cli_sends_the_personal_token_and_the_service_names_its_owner(
    personal: TestClient, settings: Settings
) -> None:
    with served_on_loopback(personal.app) as url:
        env = {"MLOPS_API_URL": url, "MLOPS_ACTOR": "mallory", "COLUMNS": "300"}  # no admin token, a false name
        asked = CliRunner(env={**env, "MLOPS_APPROVER_TOKEN": ALICE_TOKEN}).invoke(
            cli, ["admin", "approval", "request", "--reason", "report attached"]
        )
        assert asked.exit_code == 0, asked.output
        assert "approval of v2 requested by alice" in asked.stdout
        wrong = CliRunner(env={**env, "MLOPS_APPROVER_TOKEN": BOB_TOKEN + "x"}).invoke(
            cli, ["admin", "approval", "approve", "--reason", "guess"]
        )
        assert wrong.exit_code == 1
        assert "403" in wrong.stderr
        assert "wrong token" in wrong.stderr
    tags = mlflow_client(settings).get_model_version(settings.model_name, "2").tags
    assert (tags["approval"], tags["approval_requested_by"]) == ("pending", "alice")


@pytest.mark.parametrize(
    ("tokens", "complaint"),
    [
        ({"alice": "short"}, "alice's token has 5 characters"),
        ({"alice": TOKEN}, "alice's token is the admin token or another person's"),
        ({"alice": ALICE_TOKEN, "bob": ALICE_TOKEN}, "bob's token is the admin token or another person's"),
        ({"al ice": ALICE_TOKEN}, "the name 'al ice' must match"),
    ],
)
def test_weak_or_shared_personal_tokens_stop_the_service_at_start_up(
    settings: Settings, params: Params, tokens: dict[str, str], complaint: str
) -> None:
    from serving.admin import WeakAdminTokenError

    bad = settings.model_copy(update={"approver_tokens": tokens})
    with pytest.raises(WeakAdminTokenError, match=re.escape(complaint)), TestClient(create_app(bad, params)):
        pass
    assert ALICE_TOKEN not in bad.model_dump_json()  # never shown
