"""Starting the API server: uvicorn on a socket we bind ourselves, so every connection gets TCP_NODELAY.

Concept: REST serving (C18). Uvicorn runs the app *factory* ``serving.app:create_app`` (every worker
builds its own app; the lifespan loads the models), so nothing heavy happens at import and
``--workers N`` gives N processes that converge on the same aliases and routing state by polling.
``mlops-lab serve`` and the serving benchmark (its bare-FastAPI baseline too) start servers here.

Why the socket is bound here and not by uvicorn (uvicorn issue #3149): with ``--workers > 1``,
uvicorn binds the listening socket itself with ``socket.socket(family)``, i.e. ``proto=0``. Accepted
connections inherit ``proto``, and asyncio only sets ``TCP_NODELAY`` on a socket whose proto is
``IPPROTO_TCP``. So every worker leaves Nagle's algorithm on, and each keep-alive request after the
first waits for the client's delayed ACK: about 40 ms of pure waiting per request on Linux. We
bind the socket with ``IPPROTO_TCP`` and hand it to uvicorn's own supervisor (or server), so
accepted connections get ``TCP_NODELAY`` on every event loop and worker count.
``tests/integration/serving/test_serve_uvicorn.py`` checks the option on a real accepted connection.

Slow clients are bounded here too (`server_config`): the request headers must arrive within
``header_timeout_s`` (`serving.slow_clients`), and beyond ``max_concurrency`` open connections or
requests in flight per worker, uvicorn answers 503 at once instead of queueing (``limit_concurrency``).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn

    from core.settings import Settings

APP_FACTORY = "serving.app:create_app"


def bind_tcp_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket whose ``proto`` is IPPROTO_TCP (so accepted sockets get TCP_NODELAY)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port}: {err.strerror}; pick another --port or stop the other server"
        ) from err
    return sock


def server_config(app: Any, settings: Settings, **kwargs: Any) -> uvicorn.Config:
    """Uvicorn's config for ``app`` with the settings' header deadline and concurrency limit.

    ``kwargs`` go to ``uvicorn.Config`` (host, port, workers, log level...).
    """
    from serving.slow_clients import DeadlineConfig

    return DeadlineConfig(
        app, header_timeout_s=settings.header_timeout_s, limit_concurrency=settings.max_concurrency, **kwargs
    )


def run_server(
    app: str = APP_FACTORY,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    *,
    factory: bool = True,
    loop: str = "auto",
    log_level: str = "info",
    settings: Settings | None = None,
) -> None:
    """Run ``app`` (an import string) under uvicorn on a socket bound by `bind_tcp_socket`.

    Blocks until the server stops (Ctrl-C / SIGTERM: graceful shutdown runs every lifespan). The header
    deadline and the concurrency limit come from ``settings`` (default: the environment's).
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from core.settings import Settings
    from serving.access_log import UVICORN_LOG_CONFIG

    config = server_config(
        app,
        settings if settings is not None else Settings(),
        host=host,
        port=port,
        workers=workers,
        factory=factory,
        loop=loop,
        log_level=log_level,
        access_log=False,  # the app writes one structured JSON line per request (serving.access) instead
        log_config=UVICORN_LOG_CONFIG,  # uvicorn's own lines as JSON, like the access lines
        timeout_graceful_shutdown=30,
    )
    sock = bind_tcp_socket(host, port)
    try:
        if workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C in single-process mode: the server already shut down cleanly
        pass
    finally:
        sock.close()
