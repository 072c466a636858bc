"""The Lambda handler end to end: real API Gateway HTTP API (payload 2.0) events, real registry and log.

One registry per module (v1 champion, trained by the real training path) and one `LambdaApp` over it,
as one warm execution environment: the events in tests/fixtures/api_gateway_v2/ go through Mangum into
the service's own app. Each prediction must be in the prediction log *when the handler returns* (read
with a separate connection, no flush by the test), because Lambda freezes the environment right after.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.params import Params
from core.settings import Settings
from pipelines.data import ingest
from pipelines.training_steps import run_training
from serving import lambda_handler
from serving.lambda_handler import LambdaApp
from serving.log_reader import rows_of_request

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EVENTS = Path(__file__).resolve().parents[2] / "fixtures" / "api_gateway_v2"
TOKEN = "workshop-admin-test-token"


class LambdaContext:
    """The attributes of Lambda's context object the handler reads (a real one comes from the runtime)."""

    function_name = "mlops-lab-predict"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def __init__(self, remaining_ms: int = 30_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def event(name: str, **changes: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    for key, value in changes.items():
        if key == "request_id":
            loaded["headers"]["x-request-id"] = value
        else:
            loaded[key] = value
    return loaded


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params) -> Settings:
    root = tmp_path_factory.mktemp("lambda")
    settings = make_settings(root / "state", poll_interval_s=3600, admin_token=TOKEN)
    assert (
        run_training(settings, params, ingest(params.dataset, params.ingest, root / "iris.csv")).status == "registered"
    )
    return settings


@pytest.fixture(scope="module")
def warm(trained: Settings, params: Params) -> Iterator[LambdaApp]:
    app = LambdaApp(trained, params, flush_timeout_s=1.0)
    try:
        yield app
    finally:
        app.close()


def log_count(settings: Settings, request_id: str) -> int:
    """Rows of ``request_id`` (and its per-row ids) committed to the prediction log, read from outside."""
    return rows_of_request(settings.prediction_log_uri, request_id)


def body(answer: dict[str, Any]) -> Any:
    text = base64.b64decode(answer["body"]) if answer["isBase64Encoded"] else answer["body"]
    return json.loads(text)


def test_predict_event_answers_and_the_row_is_logged_once_before_the_handler_returns(
    warm: LambdaApp, trained: Settings
) -> None:
    answer = warm(event("predict"), LambdaContext())
    assert answer["statusCode"] == 200
    assert answer["isBase64Encoded"] is False
    assert answer["headers"]["content-type"] == "application/json"
    assert answer["headers"]["x-request-id"] == "apigw-predict-1"
    payload = body(answer)
    assert (payload["model_version"], payload["arm"]) == ("1", "champion")
    [prediction] = payload["predictions"]
    assert prediction["class"] == "setosa"
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
    assert log_count(trained, "apigw-predict-1") == 1  # committed: the environment may be frozen now


def test_a_base64_encoded_body_is_decoded_and_every_row_logged_once(warm: LambdaApp, trained: Settings) -> None:
    assert event("predict_base64")["isBase64Encoded"] is True
    answer = warm(event("predict_base64"), LambdaContext())
    assert answer["statusCode"] == 200
    assert [p["class"] for p in body(answer)["predictions"]] == ["setosa", "virginica"]
    assert log_count(trained, "apigw-predict-b64") == 2


def test_bad_input_is_a_422_in_the_one_error_shape_naming_the_fields(warm: LambdaApp, trained: Settings) -> None:
    answer = warm(event("predict_bad_input"), LambdaContext())
    assert answer["statusCode"] == 422
    payload = body(answer)
    assert set(payload) == {"error", "detail"}
    assert {entry["field"] for entry in payload["detail"]} >= {"sepal_length", "petal_width"}
    assert "sepal_length" in payload["error"]
    assert log_count(trained, "apigw-predict-bad") == 0


def test_health_and_readiness_events(warm: LambdaApp) -> None:
    health = warm(event("healthz"), LambdaContext())
    assert (health["statusCode"], body(health)) == (200, {"status": "alive"})
    ready = warm(event("readyz"), LambdaContext())
    assert ready["statusCode"] == 200
    report = body(ready)
    assert report["ready"] is True
    assert report["models"]["champion"]["version"] == "1"


def test_mlflow_invocations_event_is_answered_and_logged_once(warm: LambdaApp, trained: Settings) -> None:
    answer = warm(event("invocations"), LambdaContext())
    assert answer["statusCode"] == 200
    assert body(answer) == {"predictions": ["virginica"]}
    assert log_count(trained, "apigw-invocations-1") == 1


def test_the_admin_api_without_a_token_is_401_and_changes_nothing(warm: LambdaApp) -> None:
    before = warm.runtime.routing.current() if warm.runtime.routing else None
    answer = warm(event("admin_no_token"), LambdaContext())
    assert answer["statusCode"] == 401
    assert answer["headers"]["www-authenticate"].startswith("Bearer")
    assert set(body(answer)) == {"error", "detail"}
    assert warm.runtime.routing is not None
    assert warm.runtime.routing.current() == before


def test_the_model_is_loaded_once_per_environment_not_per_invocation(warm: LambdaApp) -> None:
    """Mangum's own lifespan handling would start (load) and stop (close the log) around every call."""
    assert warm.runtime.cache is not None
    assert warm.runtime.log is not None
    model, log = warm.runtime.cache.snapshot()["champion"], warm.runtime.log
    for n in range(3):
        answer = warm(event("predict", request_id=f"apigw-warm-{n}"), LambdaContext())
        assert answer["statusCode"] == 200
    assert warm.runtime.cache.snapshot()["champion"] is model
    assert warm.runtime.log is log
    assert log_count(warm.runtime.settings, "apigw-warm-2") == 1  # the same log, still open and writing


def test_an_answer_whose_rows_cannot_be_committed_is_withheld_then_logged_once(
    warm: LambdaApp, trained: Settings
) -> None:
    from tests.sqlite_faults import full_disk

    ids: list[str] = []
    withheld: dict[str, Any] | None = None
    with full_disk(trained.state / "predictions.db") as disk:
        disk.pages = disk.pages_now()
        while withheld is None and len(ids) < 200:  # until a write no longer fits in the file
            ids.append(f"apigw-full-{len(ids)}")
            answer = warm(event("predict", request_id=ids[-1]), LambdaContext())
            if answer["statusCode"] != 200:
                withheld = answer
        assert withheld is not None, "the capped file never filled up"
        assert withheld["statusCode"] == 503
        assert withheld["headers"]["retry-after"] == "1"
        assert withheld["headers"]["x-request-id"] == ids[-1]
        payload = body(withheld)
        assert set(payload) == {"error", "detail"}
        assert "withheld" in payload["error"]
        assert log_count(trained, ids[-1]) == 0  # not served, not yet stored
        disk.pages = None  # space again: the queued row is written by the writer, once
        assert warm.runtime.log is not None
        assert warm.runtime.log.flush(timeout=30)
    retry = warm(event("predict", request_id=ids[-1]), LambdaContext())  # the client retries the same request
    assert retry["statusCode"] == 200
    assert [log_count(trained, request_id) for request_id in ids] == [1] * len(ids)


def test_on_a_real_lambda_state_on_the_environments_disk_is_refused(
    trained: Settings, params: Params, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(lambda_handler.LAMBDA_ENV, "mlops-lab-predict")
    with pytest.raises(lambda_handler.StateNotExternalError, match="MLOPS_PREDICTION_LOG_URL"):
        LambdaApp(trained, params)


def test_the_entry_point_builds_the_app_once_from_the_environment(
    trained: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "MLOPS_PROJECT_DIR": str(trained.project_dir),
        "MLOPS_STATE_DIR": str(trained.state),
        "MLOPS_POLL_INTERVAL_S": "3600",
        "MLOPS_ACCESS_LOG": "false",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(lambda_handler, "_built", None)
    try:
        first = lambda_handler.handler(event("readyz"), LambdaContext())
        built = lambda_handler._built
        second = lambda_handler.handler(event("healthz"), LambdaContext())
        assert (first["statusCode"], second["statusCode"]) == (200, 200)
        assert built is not None
        assert lambda_handler._built is built
        assert built.invocations == 2
    finally:
        if lambda_handler._built is not None:
            lambda_handler._built.close()


def test_access_lines_are_written_during_the_invocation_once_each(
    trained: Settings, params: Params, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lambda may freeze the environment after the answer: the access line cannot wait for a writer thread."""
    import logging

    access = logging.getLogger("serving.access")
    saved = (list(access.handlers), access.propagate, access.level)
    app = LambdaApp(trained.model_copy(update={"access_log": True}), params)
    try:
        capsys.readouterr()
        answer = app(event("predict", request_id="apigw-access-line"), LambdaContext())
        assert answer["statusCode"] == 200
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "apigw-access-line" in line]
        assert len(lines) == 1
        assert (lines[0]["status"], lines[0]["request_id"]) == (200, "apigw-access-line")
    finally:
        app.close()
        access.handlers[:], access.propagate = saved[0], saved[1]
        access.setLevel(saved[2])
