"""A deadline for a request's headers: slow or silent clients are answered 408 and disconnected.

Concept: API security (C44) and resilience (C49) at the connection level. Uvicorn closes an *idle*
keep-alive connection after ``timeout_keep_alive`` seconds, but a connection that never sends a
byte, or sends a request's headers one byte at a time ("slow loris"), has no deadline at all: each
such client holds a socket, a file descriptor and a parser forever, and a few thousand of them
starve the process of descriptors so that real clients are never accepted.

`HeaderDeadlineProtocol` is uvicorn's httptools protocol plus one timer: armed when a connection is
made and when the first byte of each further request arrives, cancelled when the headers are
complete. When it fires first, the client gets ``408 Request Timeout`` with ``Connection: close``
and the socket is closed. The deadline counts from the start, not from the last byte, so trickling
a byte now and then does not extend it. A request whose headers arrived is the app's: its body has
its own deadline (`serving.limits.BodyReadTimeout`), and how many requests run at once is uvicorn's
``limit_concurrency`` (a 503 beyond it). The timeout travels in `DeadlineConfig`, a picklable
``uvicorn.Config``, because with ``--workers N`` the config is sent to each spawned worker.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

TIMEOUT_MESSAGE = b"request headers not received in time; send the whole request promptly"
WORKER_TASKS = "mlops.worker_tasks"  # scope key: the worker's live request tasks (`HeaderDeadlineProtocol`)


class DeadlineConfig(uvicorn.Config):
    """``uvicorn.Config`` that also carries ``header_timeout_s`` and serves with `HeaderDeadlineProtocol`."""

    def __init__(self, app: Any, *, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(app, http=HeaderDeadlineProtocol, **kwargs)
        self.header_timeout_s = header_timeout_s


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol with a per-request deadline for the request line and headers."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.header_timeout_s: float | None = getattr(config, "header_timeout_s", None)
        self.header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a client that connects and sends nothing is on the clock too

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # the first byte of a request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        # Every request's scope carries the worker's set of request tasks (uvicorn's ServerState.tasks, shared by
        # all connections): a task enters it when its request's headers are parsed, before it first runs, so a
        # handler can tell whether other requests are in flight (`serving.micro_batch`). Set before the task runs.
        self.scope[WORKER_TASKS] = self.tasks  # type: ignore[literal-required]

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self.header_deadline is None and self.header_timeout_s is not None:
            self.header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_timed_out)

    def _disarm(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_timed_out(self) -> None:
        self.header_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # We are still answering the previous request, so reading is paused and the next request's
            # headers wait in the socket: our slowness, not the client's. Check again later.
            self._arm()
            return
        content = [STATUS_LINE[408]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(TIMEOUT_MESSAGE),
            b"connection: close\r\n\r\n",
            TIMEOUT_MESSAGE,
        ]
        self.transport.write(b"".join(content))
        self.transport.close()
