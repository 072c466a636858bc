"""Micro-batching on the real app: requests that arrive together share one model call, and nothing else.

A real registry (v1 champion, v2 challenger from the training path) and the app's own lifespan. The
requests are started together inside the app's event loop (``asyncio.gather`` in the TestClient's
portal), which is what a burst of concurrent connections does to a uvicorn worker: every request
reaches the queue before the loop's next turn, so the batch is deterministic here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.params import Params
from core.settings import Settings
from pipelines.data import ingest
from pipelines.training_steps import run_training
from serving.app import create_app
from serving.predict import Served, UnknownVersionError, score
from serving.prediction_log import predictions_table
from serving.router import RoutingState, route

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params) -> Settings:
    root = tmp_path_factory.mktemp("micro-batch")
    settings = make_settings(root / "state", poll_interval_s=3600, rate_limit_per_s=0)
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    for _ in range(2):  # v1 champion, v2 challenger
        assert run_training(settings, params, data).status == "registered"
    return settings


@pytest.fixture(scope="module")
def client(registry: Settings, params: Params) -> Iterator[TestClient]:
    with TestClient(create_app(registry, params)) as test_client:
        yield test_client


def runtime_of(client: TestClient) -> Any:
    return client.app.state.runtime  # type: ignore[attr-defined]


def model_calls(client: TestClient) -> tuple[float, float]:
    """(model calls so far, rows scored by them) from the app's own metrics."""
    registry = runtime_of(client).metrics.registry
    return registry.get_sample_value("mlops_model_call_rows_count") or 0.0, registry.get_sample_value(
        "mlops_model_call_rows_sum"
    )


def rows(n: int, seed: int, params: Params) -> list[np.ndarray]:
    """``n`` one-row requests of plausible iris measurements."""
    rng = np.random.default_rng(seed)
    centre, spread = np.array([5.8, 3.0, 3.8, 1.2]), np.array([0.8, 0.4, 1.7, 0.7])
    assert len(params.dataset.feature_names) == 4
    return [np.round(rng.normal(centre, spread, (1, 4)).clip(0.1), 1) for _ in range(n)]


def serve_together(client: TestClient, calls: list[tuple[np.ndarray, str, dict[str, Any]]]) -> list[Any]:
    """Start every call of ``calls`` at once in the app's loop; the answers (or errors) in order."""
    runtime = runtime_of(client)

    async def burst() -> list[Any]:
        return await asyncio.gather(
            *(runtime.serve(values, rid, **options) for values, rid, options in calls), return_exceptions=True
        )

    portal = client.portal
    assert portal is not None
    return portal.call(burst)


@pytest.fixture
def canary(client: TestClient) -> Iterator[None]:
    runtime = runtime_of(client)
    runtime.store.update_routing(lambda s: replace(s, strategy="canary", canary_weight=0.5))
    runtime.poller.refresh()
    yield
    runtime.store.update_routing(lambda s: replace(RoutingState.from_params(runtime.params.routing)))
    runtime.poller.refresh()


def test_requests_that_arrive_together_share_one_model_call_and_keep_their_own_answers(
    client: TestClient, params: Params
) -> None:
    runtime = runtime_of(client)
    values = rows(16, seed=1, params=params)
    calls_before, rows_before = model_calls(client)
    flushes_before = runtime._batcher.flushes

    answers = serve_together(client, [(v, f"mb-{i}", {}) for i, v in enumerate(values)])

    assert all(isinstance(a, Served) for a in answers), answers
    assert runtime._batcher.flushes == flushes_before + 1
    calls, scored_rows = model_calls(client)
    assert (calls - calls_before, scored_rows - rows_before) == (1, 16)  # one call for all 16 rows
    champion = runtime.cache.snapshot()["champion"].model
    for v, served in zip(values, answers, strict=True):
        alone = score(champion, v)  # the same request scored on its own
        assert served.scored.labels == alone.labels
        np.testing.assert_allclose(served.scored.probabilities, alone.probabilities, rtol=0, atol=1e-12)
    assert [a.request_id for a in answers] == [f"mb-{i}" for i in range(16)]
    assert runtime.log.flush()
    p = predictions_table.c
    with runtime.log.engine.connect() as conn:
        logged = conn.execute(
            sa.select(p.request_id, p.prediction).where(p.request_id.like("mb-%")).order_by(p.request_id)
        ).all()
    assert sorted(logged) == sorted((a.request_id, a.scored.labels[0]) for a in answers)  # each once


def test_a_batch_keeps_every_requests_routing_and_calls_each_model_once(
    client: TestClient, params: Params, canary: None
) -> None:
    runtime = runtime_of(client)
    users = [f"user-{i:03d}" for i in range(40)]
    expected = {u: route(runtime.routing.current(), u).served_alias for u in users}
    assert set(expected.values()) == {"champion", "challenger"}  # the 50 % canary splits these users
    calls_before, _ = model_calls(client)

    answers = serve_together(
        client, [(v, f"mb-route-{i}", {"user_id": u}) for i, (u, v) in enumerate(zip(users, rows(40, 2, params)))]
    )

    snapshot = runtime.cache.snapshot()
    for user, served in zip(users, answers, strict=True):
        assert served.decision.served_alias == expected[user]
        assert served.model.version == snapshot[expected[user]].version
    assert model_calls(client)[0] - calls_before == 2  # one call per model, not one per request


def test_a_routing_error_stays_with_its_request(client: TestClient, params: Params) -> None:
    values = rows(5, seed=3, params=params)
    calls = [(v, f"mb-err-{i}", {"version": "999"} if i == 2 else {}) for i, v in enumerate(values)]

    answers = serve_together(client, calls)

    assert isinstance(answers[2], UnknownVersionError)
    assert all(isinstance(a, Served) for i, a in enumerate(answers) if i != 2)


def test_labels_only_requests_are_batched_apart_from_probability_requests(client: TestClient, params: Params) -> None:
    values = rows(6, seed=4, params=params)
    calls_before, _ = model_calls(client)
    calls = [(v, f"mb-kind-{i}", {"labels_only": i % 2 == 0}) for i, v in enumerate(values)]

    answers = serve_together(client, calls)

    assert model_calls(client)[0] - calls_before == 2  # predict() for three, predict_proba() for three
    assert [a.scored.probabilities is None for a in answers] == [True, False] * 3


def test_with_micro_batching_off_each_request_is_scored_alone(registry: Settings, params: Params) -> None:
    settings = registry.model_copy(update={"micro_batch_rows": 0})
    with TestClient(create_app(settings, params)) as alone:
        assert runtime_of(alone)._batcher is None
        calls_before, _ = model_calls(alone)
        answers = serve_together(alone, [(v, f"mb-off-{i}", {}) for i, v in enumerate(rows(8, 5, params))])
        assert all(isinstance(a, Served) for a in answers)
        assert model_calls(alone)[0] - calls_before == 8


def test_over_http_a_batch_answers_every_request_exactly_like_the_same_request_alone(
    client: TestClient, params: Params
) -> None:
    """The HTTP answer body does not change: a burst and a lone request give the same classes."""
    body = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
    lone = client.post("/v1/predict", json=body).json()["predictions"][0]
    values = np.array([[body[f] for f in params.dataset.feature_names]])
    answers = serve_together(client, [(values, f"mb-http-{i}", {}) for i in range(8)])
    for served in answers:
        assert served.scored.labels == [lone["class"]]
        probabilities = dict(zip(served.scored.classes, served.scored.probabilities[0], strict=True))
        assert probabilities == pytest.approx(lone["probabilities"], abs=1e-12)
