"""Request limits: the token bucket on an injected clock, and the ASGI middlewares on tiny apps."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from serving.limits import BodySizeLimit, RateLimit, RateLimiter, TokenBucket, client_key, declared_length


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_grants_the_burst_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, tokens=3, updated=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # one token takes 1/rate seconds
    assert bucket.take(0.25) == pytest.approx(0.25)  # half a token refilled: half the wait left
    assert bucket.take(0.5) == 0.0


def test_bucket_refill_is_capped_at_the_burst_and_a_clock_stepping_back_mints_nothing() -> None:
    bucket = TokenBucket(rate=10.0, burst=2, tokens=0, updated=0.0)
    assert bucket.take(3600.0) == 0.0  # an hour idle refills to the burst, not to 36,000
    assert bucket.take(3600.0) == 0.0
    assert bucket.take(3600.0) > 0
    assert bucket.take(1.0) > 0  # time went backwards: no refill


def test_limiter_keeps_one_bucket_per_client() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=2, clock=clock)
    assert [limiter.check("10.0.0.1") for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]
    assert limiter.check("10.0.0.2") == 0.0  # another client is not affected
    clock.now += 1.0
    assert limiter.check("10.0.0.1") == 0.0


def test_limiter_memory_is_bounded_and_forgets_the_least_recently_seen() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock, max_clients=2)
    limiter.check("a")
    limiter.check("b")
    assert limiter.check("a") > 0  # a is now the most recently seen; b the least
    limiter.check("c")  # over the bound: b is forgotten, a is kept
    assert limiter.check("a") > 0
    assert limiter.check("b") == 0.0  # forgotten means a fresh full bucket: more lenient, never stricter


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 5), (1.0, 0)])
def test_limiter_rejects_a_meaningless_configuration(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate must be > 0 and burst >= 1"):
        RateLimiter(rate=rate, burst=burst)


def test_scope_helpers() -> None:
    assert client_key({"client": ("192.0.2.7", 5123)}) == "192.0.2.7"
    assert client_key({"client": None}) == "unknown"
    assert declared_length({"headers": [(b"content-length", b"42")]}) == 42
    assert declared_length({"headers": [(b"transfer-encoding", b"chunked")]}) is None
    assert declared_length({"headers": [(b"content-length", b"-1")]}) is None


# ---- the middlewares -------------------------------------------------------------------------


def echo_app(max_bytes: int, calls: list[str]) -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        calls.append("called")
        return JSONResponse({"received": len(await request.body())})

    app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
    app.add_middleware(BodySizeLimit, max_bytes=max_bytes)
    return app


def chunks(n: int, size: int) -> Iterator[bytes]:
    for _ in range(n):
        yield b"x" * size


def test_declared_oversized_body_is_refused_unread() -> None:
    calls: list[str] = []
    client = TestClient(echo_app(100, calls))
    assert client.post("/echo", content=b"x" * 100).json() == {"received": 100}  # at the limit: fine
    response = client.post("/echo", content=b"x" * 101)
    assert response.status_code == 413
    assert response.json()["detail"] == [
        {"msg": response.json()["error"], "field": "body", "type": "body_too_large", "limit": 100}
    ]
    assert "100 bytes" in response.json()["error"]
    assert calls == ["called"]  # the oversized request never reached the app


def test_chunked_body_without_length_is_counted() -> None:
    calls: list[str] = []
    client = TestClient(echo_app(100, calls))
    ok = client.post("/echo", content=chunks(4, 25))
    assert ok.request.headers.get("transfer-encoding") == "chunked"
    assert ok.json() == {"received": 100}
    too_big = client.post("/echo", content=chunks(5, 25))
    assert "content-length" not in too_big.request.headers
    assert too_big.status_code == 413
    assert too_big.json()["detail"][0]["limit"] == 100


class Body(BaseModel):
    text: str


def test_fastapi_json_route_answers_413_not_its_own_400() -> None:
    api = FastAPI()

    @api.post("/items")
    async def items(body: Body) -> dict[str, int]:
        return {"length": len(body.text)}

    api.add_middleware(BodySizeLimit, max_bytes=50)
    client = TestClient(api)
    assert client.post("/items", json={"text": "short"}).json() == {"length": 5}
    payload = b'{"text": "' + b"y" * 100 + b'"}'
    response = client.post("/items", content=iter([payload]), headers={"Content-Type": "application/json"})
    assert response.status_code == 413  # FastAPI turns the failed read into a 400; the 413 replaces it


def test_streamed_body_stops_being_read_at_the_limit() -> None:
    """ASGI level: several chunks, the request is cut off at the first chunk over the limit."""
    reads: list[int] = []
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": b"x" * 40, "more_body": True} for _ in range(10)]

    async def receive() -> dict[str, Any]:
        reads.append(1)
        return messages[len(reads) - 1]

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def reader(scope: Any, receive_: Any, send_: Any) -> None:
        while (await receive_())["more_body"]:
            pass

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    asyncio.run(BodySizeLimit(reader, max_bytes=100)(scope, receive, send))
    assert len(reads) == 3  # 40 + 40 + 40 > 100: the fourth chunk is never read
    assert sent[0]["status"] == 413


def test_an_unrelated_app_error_is_not_turned_into_413() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("a bug")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("nothing may be sent")

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    with pytest.raises(RuntimeError, match="a bug"):
        asyncio.run(BodySizeLimit(broken, max_bytes=100)(scope, receive, send))


def test_rate_limit_answers_429_with_retry_after_and_recovers() -> None:
    clock = Clock()

    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/", ok)])
    app.add_middleware(RateLimit, limiter=RateLimiter(rate=0.5, burst=3, clock=clock))
    client = TestClient(app)
    assert [client.get("/").status_code for _ in range(3)] == [200, 200, 200]
    limited = client.get("/")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"  # 1 token at 0.5/s
    assert limited.json()["detail"][0]["field"] == "client"
    assert "0.5 requests/s" in limited.json()["error"]
    clock.now += 1.5
    assert client.get("/").headers["retry-after"] == "1"  # 0.5 s left, rounded up to a whole second
    clock.now += 0.5
    assert client.get("/").status_code == 200
