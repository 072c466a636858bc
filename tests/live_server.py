"""An ASGI app served by a real uvicorn on a loopback port, for tests that need real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from serving.server import bind_tcp_socket


@contextmanager
def served_on_loopback(app: Any, start_timeout_s: float = 30) -> Iterator[str]:
    """Serve ``app`` (lifespan off: the caller runs it, or it needs none) and yield its base URL."""
    import uvicorn

    sock = bind_tcp_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    try:
        while not server.started:  # readiness poll, bounded by the deadline
            assert thread.is_alive(), "uvicorn exited during start-up"
            assert time.monotonic() < deadline, f"uvicorn did not start within {start_timeout_s:g} s"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
