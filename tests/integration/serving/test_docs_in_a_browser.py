"""The interactive API docs render in a real browser with no network (issue: offline means offline).

Headless Chromium (tests/browser.py) loads ``/docs`` and ``/redoc`` from uvicorn on a loopback port,
with every non-loopback request sent nowhere. Swagger UI must list the API's operations and ReDoc its
endpoints. The negative control is FastAPI's stock docs page, which loads Swagger UI from a CDN: under
the same block it renders no operation at all, so the test can tell offline docs from online ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from core.params import Params
from core.settings import Settings
from serving.app import create_app
from tests.browser import rendered_dom
from tests.live_server import served_on_loopback

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory, params: Params) -> Iterator[str]:
    settings = Settings(state_dir=tmp_path_factory.mktemp("docs-state"), rate_limit_per_s=0)
    with served_on_loopback(create_app(settings, params)) as url:
        yield url


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

    with served_on_loopback(stock) as url:
        dom = rendered_dom(f"{url}/docs", tmp_path / "profile")
        assert "opblock-summary-path" not in dom  # Swagger UI never arrived from the CDN


def _between(text: str, start: str, end: str) -> Iterator[str]:
    for chunk in text.split(start)[1:]:
        yield chunk.split(end, 1)[0]
