"""The two hot POST routes as raw ASGI handlers, dispatched before FastAPI's router.

Concept: REST serving (C18) at the cost of a bare endpoint. FastAPI's own work per request (router
match, exception and exit-stack middlewares, a ``Request``, dependency solving, a ``Response``
object) is a large share of a one-row prediction's cost, and the target (DESIGN.md) gives routing and
logging only 15 % of a bare endpoint's throughput. So
``/v1/predict`` and ``/invocations`` are written as plain ASGI handlers (scope in, two ``send``
calls out) and `HotRoutes`, the innermost middleware, hands them ``POST`` requests on their exact
path directly. Everything else -- other methods (405), other paths, a ``root_path`` deployment --
goes through the router, and the routes stay declared in FastAPI for the OpenAPI document: their
endpoint returns `AsgiEndpoint`, which runs the same handler, so there is one implementation.

The outer layers see no difference: the metrics middleware finds the route in ``scope["route"]``
(the label is the route template, as the router would set it), a body over the limit still
raises inside ``receive`` for the body-size middleware, an unexpected exception still reaches the
server-error middleware (500), and a validation error gets the same 422 body as the router path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect
from starlette.responses import Response

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[["Scope", "Receive", "Send"], Awaitable[None]]


def header_values(scope: Scope, names: frozenset[bytes]) -> dict[bytes, str]:
    """The first value of each wanted header, decoded as Starlette's ``Headers`` would (latin-1).

    One pass over the raw list instead of building a ``Headers`` object per request.
    """
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in names and name not in found:
            found[name] = value.decode("latin-1")
    return found


async def read_body(receive: Receive) -> bytes:
    """The whole request body (what ``Request.body()`` returns, without the Request and generator)."""
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        return message.get("body", b"")  # the common case: one message
    chunks: list[bytes] = []
    while True:
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


def json_headers(extra: Iterable[tuple[bytes, bytes]], body: bytes) -> list[tuple[bytes, bytes]]:
    """Raw headers exactly as ``Response(body, media_type="application/json", headers=...)`` builds them."""
    return [*extra, (b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]


async def send_json(send: Send, body: bytes, extra: Iterable[tuple[bytes, bytes]]) -> None:
    """A 200 JSON answer in two messages, with no Response object in between."""
    await send({"type": "http.response.start", "status": 200, "headers": json_headers(extra, body)})
    await send({"type": "http.response.body", "body": body})


class AsgiEndpoint(Response):
    """What a FastAPI endpoint returns to run a raw handler instead (the router path of a hot route)."""

    def __init__(self, handler: Handler) -> None:  # no super().__init__: there is no body to render
        self.handler = handler
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handler(scope, receive, send)
        if self.background is not None:
            await self.background()


class HotRoutes:
    """Innermost middleware: ``POST`` on a hot path goes straight to its handler, all else to the app."""

    def __init__(self, app: ASGIApp, table: dict[str, tuple[Any, Handler]]) -> None:
        self.app, self.table = app, table  # path -> (its FastAPI route, the handler); filled by create_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            hit = self.table.get(scope["path"])
            if hit is not None:
                route, handler = hit
                scope["route"], scope["endpoint"], scope["path_params"] = route, route.endpoint, {}  # as the router
                await handler(scope, receive, send)
                return
        await self.app(scope, receive, send)


def register(table: dict[str, tuple[Any, Handler]], routes: Iterable[Any], path: str, handler: Handler) -> None:
    """Enter a declared POST route's handler in the dispatch table (``routes``: the app's or a router's)."""
    matches = [r for r in routes if getattr(r, "path", None) == path and "POST" in getattr(r, "methods", ())]
    if len(matches) != 1:
        raise ValueError(f"expected one POST route {path!r} to serve on the hot path, found {len(matches)}")
    table[path] = (matches[0], handler)
