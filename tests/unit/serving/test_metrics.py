"""What the request metrics count: a client that hangs up is not a server error, an upload is not our latency.

Both series feed the canary analysis and the alerts (error rate, p99 latency): a client closing its
connection mid-body counted as a 500 would abort a canary, and a slow upload timed as our latency would
page someone for the client's network. The middleware runs here over a tiny ASGI app with scripted
receive messages and a scripted clock, so the test is exact.
"""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest

import serving.metrics as metrics_module
from serving.hot_routes import read_body, send_json
from serving.metrics import Metrics, MetricsMiddleware


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    await read_body(receive)
    await send_json(send, b"{}", ())


def run(middleware: MetricsMiddleware, messages: list[dict[str, Any]], clock: SimpleNamespace | None = None) -> None:
    script = iter(messages)

    async def receive() -> dict[str, Any]:
        message = next(script)
        if clock is not None:
            clock.now += message.pop("_takes", 0.0)
        return message

    async def send(_message: dict[str, Any]) -> None:
        if clock is not None:
            clock.now += 0.5  # our own work: half a second until the answer leaves

    scope = {"type": "http", "method": "POST", "path": "/v1/predict", "headers": []}
    asyncio.run(middleware(scope, receive, send))


def count(metrics: Metrics, status: str) -> float:
    return (
        metrics.registry.get_sample_value(
            "http_requests_total", {"route": "unmatched", "method": "POST", "status": status}
        )
        or 0.0
    )


def test_a_client_that_hangs_up_mid_body_is_a_499_not_a_server_error() -> None:
    metrics = Metrics()
    run(
        MetricsMiddleware(echo_app, metrics),
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}],
    )
    assert count(metrics, "499") == 1
    assert count(metrics, "500") == 0


def test_latency_counts_from_the_end_of_the_body_not_the_clients_upload(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(metrics_module, "time", SimpleNamespace(perf_counter=lambda: clock.now))
    metrics = Metrics()
    trickled = [
        {"type": "http.request", "body": b"{", "more_body": True, "_takes": 10.0},  # a slow client's upload
        {"type": "http.request", "body": b"}", "more_body": False, "_takes": 10.0},
    ]
    run(MetricsMiddleware(echo_app, metrics), trickled, clock)
    assert count(metrics, "200") == 1
    latency = metrics.registry.get_sample_value(
        "http_request_duration_seconds_sum", {"route": "unmatched", "method": "POST"}
    )
    assert latency == pytest.approx(1.0)  # two sends of 0.5 s each after the body; not the 20 s upload


def test_an_answer_given_before_routing_is_counted_and_logged_under_its_route_template() -> None:
    """A 429 from the rate limiter never reaches the router; it still belongs to its route, not "unmatched"."""
    from starlette.routing import Route

    async def refuse(scope: Any, receive: Any, send: Any) -> None:  # an edge middleware's answer: no route set
        await read_body(receive)
        await send({"type": "http.response.start", "status": 429, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    routes = [Route("/v2/models/{name}/infer", endpoint=lambda request: None, methods=["POST"])]
    metrics = Metrics()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    access = logging.getLogger("serving.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        scope = {"type": "http", "method": "POST", "path": "/v2/models/iris/infer", "headers": []}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(_message: dict[str, Any]) -> None:
            pass

        asyncio.run(MetricsMiddleware(refuse, metrics, routes=routes)(scope, receive, send))
    finally:
        access.removeHandler(handler)
    labels = {"route": "/v2/models/{name}/infer", "method": "POST", "status": "429"}
    assert metrics.registry.get_sample_value("http_requests_total", labels) == 1.0
    (record,) = records
    line = json.loads(record.getMessage())
    assert list(line)[:2] == ["ts", "level"]
    assert (line["level"], line["path"], line["status"]) == ("warning", "/v2/models/{name}/infer", 429)
    assert line["ts"].endswith("Z")
    assert line["latency_ms"] == round(line["latency_ms"], 3)


def test_uvicorn_lines_are_json_with_the_same_leading_keys() -> None:
    from serving.access_log import JsonLogFormatter

    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started server process [%d]", (42,), None)
    line = json.loads(JsonLogFormatter().format(record))
    assert list(line) == ["ts", "level", "logger", "message"]
    assert (line["level"], line["logger"], line["message"]) == ("info", "uvicorn.error", "Started server process [42]")


def test_a_made_up_http_method_is_counted_as_other_so_clients_cannot_grow_the_series() -> None:
    """HTTP allows any token as a method; each new label value would be a series kept for the process's life."""
    metrics = Metrics()
    middleware = MetricsMiddleware(echo_app, metrics)
    body = {"type": "http.request", "body": b"{}", "more_body": False}
    for i in range(50):
        scope = {"type": "http", "method": f"BREW{i}", "path": "/v1/predict", "headers": []}
        asyncio.run(middleware(scope, lambda: _next(body), _ignore))
    scope = {"type": "http", "method": "POST", "path": "/v1/predict", "headers": []}
    asyncio.run(middleware(scope, lambda: _next(body), _ignore))
    methods = {
        sample.labels["method"]
        for family in metrics.registry.collect()
        if family.name in ("http_requests", "http_request_duration_seconds")
        for sample in family.samples
        if "method" in sample.labels
    }
    assert methods == {"other", "POST"}
    assert count_for(metrics, "other") == 50
    assert count_for(metrics, "POST") == 1
    assert len(metrics._per_request) == 1  # the children cache holds known methods only


async def _next(message: dict[str, Any]) -> dict[str, Any]:
    return dict(message)


async def _ignore(_message: dict[str, Any]) -> None:
    return None


def count_for(metrics: Metrics, method: str) -> float:
    labels = {"route": "unmatched", "method": method, "status": "200"}
    return metrics.registry.get_sample_value("http_requests_total", labels) or 0.0
