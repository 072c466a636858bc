"""Request limits at the edge of the API: body size (413), body time (408), per-client rate (429) and CORS.

Concept: API security (C44) as runtime configuration (C27). A model server is a CPU-bound service
on a public port, so the cheapest requests to refuse are the ones refused before any parsing:

- **Body size.** ``Content-Length`` above ``max_body_bytes`` is refused before a byte is read (and
  one within it needs no counting: the server frames the body by that length). A chunked body
  declares no length, so its bytes are counted as the app reads them; past the limit the read
  fails and whatever the app would have answered is replaced by the same 413.
- **Body time.** A request's body must have arrived ``body_timeout_s`` after its headers, however it
  trickles in; a client that stalls mid-body is answered 408 with ``Connection: close`` (a 4xx on
  /metrics, never a 5xx). The headers' own deadline is the server's (`serving.slow_clients`).
- **Rate.** A token bucket per client: ``burst`` tokens, refilled at ``rate`` per second, one per
  request; an empty bucket answers 429 with ``Retry-After`` (seconds until the next token). The key
  is the client **IP**, not ``X-User-Id``: a header is chosen by the client, so rotating it would
  escape any limit. Behind a reverse proxy the IP is the proxy's unless uvicorn trusts it
  (``--forwarded-allow-ips``; it rewrites the client address from ``X-Forwarded-For``). Buckets live
  in process memory: with N workers a client gets up to N x the rate. For one global limit, enforce
  it at the proxy (nginx ``limit_req``) or in a shared store; here it protects each process.
- **CORS** is off unless origins are configured (Starlette's ``CORSMiddleware``): with it off, a
  browser page from another origin cannot read our answers at all.

The middlewares are pure ASGI (no ``BaseHTTPMiddleware``: no extra task per request), and their
refusals are JSON in the API's error shape, naming the field and the limit.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from core.settings import Settings

MAX_CLIENTS = 10_000  # buckets kept; the least recently seen client is forgotten first
CORS_HEADERS = (
    "Authorization", "Content-Type", "X-Actor", "X-Feedback-Token", "X-Force-Arm", "X-Request-Id", "X-User-Id"
)  # fmt: skip


@dataclass
class TokenBucket:
    """``burst`` tokens, refilled continuously at ``rate`` per second; a request takes one."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take a token at time ``now``: 0.0 if granted, else the seconds until one is available."""
        elapsed = max(0.0, now - self.updated)  # a clock that steps back must not mint tokens
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """One token bucket per client key, at most ``max_clients`` of them (least recently seen dropped)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got rate={rate!r}, burst={burst!r}")
        self.rate, self.burst, self.clock, self.max_clients = rate, burst, clock, max_clients
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def waiting(self, key: str) -> float:
        """Seconds until ``key`` may be counted again, without counting anything (0.0: it may now)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        tokens = min(self.burst, bucket.tokens + max(0.0, self.clock() - bucket.updated) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def check(self, key: str) -> float:
        """Count one request from ``key``: 0.0 if allowed, else the seconds to wait before retrying."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self.burst, now)
            if len(self._buckets) > self.max_clients:
                # Bounded memory under a flood of addresses. A forgotten client starts again with a full
                # bucket, so the bound can only make the limit more lenient, never refuse anyone wrongly.
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)


def client_key(scope: Scope) -> str:
    """The rate-limit key: the client IP as the server (or a trusted proxy's header) reports it."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, or None when it is absent (chunked) or not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def send_error(
    send: Send, status: int, message: str, detail: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    """Answer with the API's JSON error shape: ``{"error": ..., "detail": [{field, msg, type, ...}]}``."""
    body = json.dumps({"error": message, "detail": [{"msg": message, **detail}]}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyTooLargeError(Exception):
    """Raised from ``receive`` when a streamed body passes the limit; the middleware answers 413."""


class BodySizeLimit:
    """413 for a request body over ``max_bytes``, declared (Content-Length) or streamed (chunked)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def reject(self, send: Send) -> None:
        message = f"request body too large: the limit is {self.max_bytes} bytes (MLOPS_MAX_BODY_BYTES); send less"
        await send_error(send, 413, message, {"field": "body", "type": "body_too_large", "limit": self.max_bytes})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await self.reject(send)  # refused unread: the client's upload is never buffered
            else:
                # The server frames the body by Content-Length, so it cannot outgrow what was declared:
                # no counting wrappers (two closures and an extra call per message) on the common path.
                await self.app(scope, receive, send)
            return
        received, exceeded, started = 0, False, False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLargeError(f"request body passed {self.max_bytes} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a body cut short (FastAPI: a 400) is replaced by our 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            # Only the failure we caused is ours to answer (the app may wrap it in its own exception);
            # anything else, or anything after the response started, goes on to the server.
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self.reject(send)


def has_body(scope: Scope) -> bool:
    """Whether the request announces a body (a non-zero Content-Length, or Transfer-Encoding)."""
    for name, value in scope.get("headers", ()):
        if (name == b"content-length" and value != b"0") or name == b"transfer-encoding":
            return True
    return False


class BodyTimeoutError(Exception):
    """Raised from ``receive`` when the body is not complete by its deadline; the middleware answers 408."""


class BodyReadTimeout:
    """408 and ``Connection: close`` for a request whose body is not complete ``seconds`` after its headers."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def reject(self, send: Send) -> None:
        message = f"request body not received within {self.seconds:g} s (MLOPS_BODY_TIMEOUT_S); send it promptly"
        detail = {"field": "body", "type": "body_timeout", "limit": self.seconds}
        await send_error(send, 408, message, detail, {"Connection": "close"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_body(scope):
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        body_done, timed_out, started = False, False, False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done:  # after the body, receive() only waits for a disconnect: no deadline on that
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                raise BodyTimeoutError(f"request body not complete after {self.seconds:g} s") from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out and not started:
                return  # whatever the app answers to a body cut short is replaced by our 408
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not timed_out or started:
                raise
        if timed_out and not started:
            await self.reject(send)


class RateLimit:
    """429 with ``Retry-After`` once a client has used up its token bucket."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app, self.limiter = app, limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (wait := self.limiter.check(client_key(scope))) > 0:
            retry_after = max(1, math.ceil(wait))  # Retry-After takes whole seconds
            limiter = self.limiter
            message = (
                f"rate limit exceeded: {limiter.rate:g} requests/s per client, burst {limiter.burst} "
                f"(MLOPS_RATE_LIMIT_PER_S, MLOPS_RATE_LIMIT_BURST); retry after {retry_after} s"
            )
            detail = {"field": "client", "type": "rate_limited", "retry_after": retry_after}
            await send_error(send, 429, message, detail, {"Retry-After": str(retry_after)})
            return
        await self.app(scope, receive, send)


def install(
    app: Starlette, settings: Settings, before_body: Sequence[tuple[Callable[..., ASGIApp], dict[str, Any]]] = ()
) -> None:
    """Add the limits to ``app``. Starlette runs the middleware added *last* first, so the order below
    (body size, body time, then ``before_body``, then rate, then CORS) puts CORS outermost -- a browser can
    read a 413, 408 or 429 -- and refuses a flood before its bodies are read.

    ``before_body``: middlewares (class, keyword arguments) that must answer before any body limit reads or
    judges the body, inside the rate limit: the admin API's authentication (`serving.admin.AdminAuth`).
    """
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyReadTimeout, seconds=settings.body_timeout_s)
    for middleware, options in before_body:
        app.add_middleware(middleware, **options)
    if settings.rate_limit_per_s > 0:
        limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
        app.add_middleware(RateLimit, limiter=limiter)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=list(CORS_HEADERS),
            expose_headers=["Retry-After", "X-Feedback-Token", "X-Request-Id"],
            allow_credentials=False,  # bearer tokens, no cookies: nothing ambient for another site to ride on
            max_age=600,
        )
