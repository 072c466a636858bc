"""Shadow deployment end to end: the real service, its prediction log, real uvicorn on loopback.

The shadow's online accuracy comes from the log the service wrote and the labels sent through
/v1/feedback; the user-facing latency is shown not to include the shadow's time with a challenger
held inside its model call until the test has its answer (events, no sleeps).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.app import app as cli
from core.params import Params
from core.settings import Settings
from monitoring.shadow_report import shadow_report
from pipelines.data import ingest
from pipelines.training_steps import run_training
from serving.app import create_app
from serving.prediction_log import predictions_table
from serving.router import RoutingState
from tests.live_server import served_on_loopback

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
TOKEN = "workshop-admin-test-token"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params) -> tuple[Settings, Path]:
    root = tmp_path_factory.mktemp("shadow")
    settings = make_settings(root / "state", poll_interval_s=3600, rate_limit_per_s=0, admin_token=TOKEN)
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    for _ in range(2):  # v1 champion, v2 challenger
        assert run_training(settings, params, data).status == "registered"
    return settings, data


@pytest.fixture(scope="module")
def client(registry, params: Params) -> Iterator[TestClient]:
    with TestClient(create_app(registry[0], params)) as test_client:
        runtime = test_client.app.state.runtime  # type: ignore[attr-defined]
        runtime.store.update_routing(lambda s: replace(s, strategy="shadow"))
        runtime.poller.refresh()
        yield test_client
        runtime.store.update_routing(lambda s: RoutingState.from_params(runtime.params.routing))


@pytest.fixture(scope="module")
def api_url(client: TestClient) -> Iterator[str]:
    """The module's app (lifespan running) also served by uvicorn on a loopback port."""
    with served_on_loopback(client.app) as url:
        yield url


class HeldModel:
    """The challenger's real pipeline, held inside its model call until the test releases it, then slow.

    The hold orders events (the answer arrives while the shadow is inside its model); the scripted
    ``SLOW_S`` after the release is model time, there only to make the shadow's cost plainly visible.
    """

    SLOW_S = 0.3

    def __init__(self, model: Any) -> None:
        self.model, self.classes_ = model, model.classes_
        self.started, self.release, self.finished = threading.Event(), threading.Event(), threading.Event()
        self.started_at = 0.0

    def predict_proba(self, values: np.ndarray) -> np.ndarray:
        self.started_at = time.perf_counter()
        self.started.set()
        assert self.release.wait(30), "the test never released the shadow"
        time.sleep(self.SLOW_S)  # a slow model, not synchronisation
        try:
            return np.asarray(self.model.predict_proba(values))
        finally:
            self.finished.set()


@contextmanager
def held_challenger(client: TestClient) -> Iterator[HeldModel]:
    cache = client.app.state.runtime.cache  # type: ignore[attr-defined]
    snapshot = cache.snapshot()
    held = HeldModel(snapshot["challenger"].model)
    cache._models = MappingProxyType({**snapshot, "challenger": replace(snapshot["challenger"], model=held)})
    try:
        yield held
    finally:
        held.release.set()
        cache._models = snapshot


def sample(text: str, name: str, route: str | None = None) -> float:
    labels = rf'\{{method="POST",route="{re.escape(route)}"\}}' if route else ""
    match = re.search(rf"^{name}{labels} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_the_answer_and_its_latency_do_not_wait_for_the_shadow(client: TestClient, api_url: str) -> None:
    with httpx.Client(base_url=api_url, timeout=30) as http, held_challenger(client) as held:
        before = http.get("/metrics").text
        sent = time.perf_counter()
        answer = http.post("/v1/predict", json=ROW, headers={"X-Request-Id": "held-1"})
        assert answer.status_code == 200
        assert answer.json()["arm"] == "champion"
        assert held.started.wait(30), "the shadow never ran"
        assert not held.finished.is_set()  # the user has the answer while the shadow is still inside its model
        release_at = time.perf_counter()
        held.release.set()
        assert held.finished.wait(30)
        deadline = time.monotonic() + 30
        while True:  # the middleware records the request when the app returns, after the shadow
            after = http.get("/metrics").text
            if sample(after, "http_request_duration_seconds_count", "/v1/predict") > sample(
                before, "http_request_duration_seconds_count", "/v1/predict"
            ):
                break
            assert time.monotonic() < deadline, "the request was never recorded"
            time.sleep(0.01)
    recorded = sample(after, "http_request_duration_seconds_sum", "/v1/predict") - sample(
        before, "http_request_duration_seconds_sum", "/v1/predict"
    )
    # The server's clock for this request started after `sent` and stopped when its answer went out, which
    # was before the shadow started, so before `release_at`: what it records lies inside that interval.
    # Before the fix it ran on until the shadow returned, at least SLOW_S after `release_at`.
    assert recorded < release_at - sent
    shadow_time = sample(after, "mlops_shadow_model_duration_seconds_sum") - sample(
        before, "mlops_shadow_model_duration_seconds_sum"
    )
    assert shadow_time >= release_at - held.started_at + HeldModel.SLOW_S  # the shadow's own model time
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.log.flush()
    p = predictions_table.c
    with runtime.log.engine.connect() as conn:
        logged = conn.execute(sa.select(p.latency_ms).where(p.request_id == "held-1:shadow")).scalar_one()
    assert logged >= 1e3 * (release_at - held.started_at + HeldModel.SLOW_S)  # the log's shadow time, the same


def test_shadow_report_scores_both_models_on_the_same_labelled_requests(
    client: TestClient, registry, params: Params, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    settings, data = registry
    frame = pd.read_csv(data).sample(40, random_state=3)
    features = list(ROW)
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    shadow_model = runtime.cache.snapshot()["challenger"].model
    classes = sorted(frame[params.dataset.target].astype(str).unique())
    pairs = []
    for i, (_, row) in enumerate(frame.iterrows()):
        body = client.post("/v1/predict", json={f: float(row[f]) for f in features}, headers={"X-Request-Id": f"s{i}"})
        answer = body.json()
        assert answer["arm"] == "champion"
        truth = str(row[params.dataset.target])
        label = truth if i % 3 else classes[(classes.index(truth) + 1) % 3]  # every third label disagrees with both
        shadow = str(shadow_model.predict(np.array([[float(row[f]) for f in features]]))[0])
        if i < 30:  # ten stay unlabelled
            feedback = {"request_id": f"s{i}", "label": label}
            sent = client.post("/v1/feedback", json=feedback, headers={"X-Feedback-Token": answer["feedback_token"]})
            assert sent.status_code == 200
            pairs.append((answer["predictions"][0]["class"], shadow, label))
    assert runtime.log.flush()

    [report] = [r for r in shadow_report(runtime.log.engine) if r.labelled]
    assert (report.champion_version, report.shadow_version) == ("1", "2")
    assert report.labelled == 30
    assert report.champion_correct == sum(c == lab for c, _, lab in pairs)
    assert report.shadow_correct == sum(s == lab for _, s, lab in pairs)
    assert report.shadow_accuracy == pytest.approx(report.shadow_correct / 30)
    assert 0 < report.shadow_accuracy < 1  # the planted wrong labels count against both

    monkeypatch.setenv("MLOPS_STATE_DIR", str(settings.state))
    result = CliRunner().invoke(cli, ["shadow", "report"])
    assert result.exit_code == 0, result.output
    assert f"shadow   accuracy {report.shadow_accuracy:.3f} ({report.shadow_correct}/30)" in result.output
    assert "not user-facing" in result.output
