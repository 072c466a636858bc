"""The interactive API docs render in a real browser with no network (issue: offline means offline).

Headless Chromium (tests/browser.py) loads ``/docs`` and ``/redoc`` from uvicorn on a loopback port,
with every non-loopback request sent nowhere. Swagger UI must list the API's operations and ReDoc its
endpoints. The negative control is FastAPI's stock docs page, which loads Swagger UI from a CDN: under
the same block it renders no operation at all, so the test can tell offline docs from online ones.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from core.params import Params
from core.settings import Settings
from serving.app import create_app
from tests.browser import rendered_dom

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _serve(app: FastAPI) -> Iterator[str]:
    """``app`` on uvicorn at a loopback port (no lifespan: the docs need no model)."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # readiness poll, bounded by the deadline
        assert thread.is_alive(), "uvicorn exited during start-up"
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory, params: Params) -> Iterator[str]:
    settings = Settings(state_dir=tmp_path_factory.mktemp("docs-state"), rate_limit_per_s=0)
    yield from _serve(create_app(settings, params))


def test_swagger_ui_lists_every_operation_with_the_network_blocked(api_url: str, tmp_path: Path) -> None:
    dom = rendered_dom(f"{api_url}/docs", tmp_path / "profile")
    paths = set(_between(dom, 'data-path="', '"'))
    assert {"/v1/predict", "/v1/feedback", "/invocations", "/healthz"} <= paths
    assert dom.count("opblock-summary-path") >= 10


def test_redoc_renders_the_endpoints_with_the_network_blocked(api_url: str, tmp_path: Path) -> None:
    dom = rendered_dom(f"{api_url}/redoc", tmp_path / "profile")
    assert "/v1/predict" in dom
    assert "PredictRow" in dom or "One row of features" in dom  # the request body's schema is drawn


def test_fastapis_stock_docs_page_renders_nothing_offline_the_control(tmp_path: Path) -> None:
    stock = FastAPI()

    @stock.get("/ping")
    def ping() -> dict[str, str]:
        return {"ok": "yes"}

    for url in _serve(stock):
        dom = rendered_dom(f"{url}/docs", tmp_path / "profile")
        assert "opblock-summary-path" not in dom  # Swagger UI never arrived from the CDN


def _between(text: str, start: str, end: str) -> Iterator[str]:
    for chunk in text.split(start)[1:]:
        yield chunk.split(end, 1)[0]
