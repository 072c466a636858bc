"""A tracking server that accepts connections and never answers: the service starts, stays healthy, and
routing and admin reads go on, with MLflow's HTTP timeouts bounded from the settings.

The dead server is a real listening socket on 127.0.0.1 whose connections are accepted and held: the
worst kind of outage, where every MLflow call waits for its timeout instead of failing at once.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from core.params import Params
from core.settings import Settings
from serving.app import create_app
from serving.router import with_weight
from serving.server import bind_tcp_socket, server_config
from serving.state_store import StateStore

pytestmark = [pytest.mark.integration]
TOKEN = "workshop-admin-token-example"
POLL_S, REGISTRY_TIMEOUT_S = 0.5, 3  # one MLflow call to the dead server: 2 attempts x 3 s
SECRET = "fake-test-password"


@pytest.fixture(scope="module")
def dead_tracking_server() -> Iterator[int]:
    """A port whose connections are accepted and held open without a byte of answer."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    listener.close()


def _until(condition: Callable[[], Any], within_s: float) -> float:
    """Seconds until ``condition()`` is true, polled; fails after ``within_s``."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < within_s, f"not within {within_s} s"
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture(scope="module")
def outage(
    dead_tracking_server: int, tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params
) -> Iterator[dict[str, Any]]:
    """The app started against the dead server; yields its URL, settings, runtime and the seconds to /healthz."""
    settings: Settings = make_settings(
        tmp_path_factory.mktemp("outage") / "state",
        tracking_uri=f"http://mlops:{SECRET}@127.0.0.1:{dead_tracking_server}",
        registry_timeout_s=REGISTRY_TIMEOUT_S,
        registry_retries=1,
        poll_interval_s=POLL_S,
        startup_model_wait_s=0.5,
        admin_token=TOKEN,
    )
    app = create_app(settings, params)
    sock = bind_tcp_socket("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(server_config(app, settings, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    start = time.monotonic()
    thread.start()

    def alive() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        healthz_s = _until(alive, within_s=20)
        yield {"url": url, "settings": settings, "runtime": app.state.runtime, "healthz_s": healthz_s}
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
    assert time.monotonic() - start < 600


def test_the_service_starts_and_answers_healthz_while_the_registry_hangs(outage: dict[str, Any]) -> None:
    assert outage["healthz_s"] < 5.0  # start-up waited 0.5 s for models, not for the registry's answer


def test_readyz_turns_degraded_with_a_redacted_reason(outage: dict[str, Any]) -> None:
    url = outage["url"]
    waited = _until(lambda: httpx.get(f"{url}/readyz", timeout=5).json()["degraded"], within_s=20)
    assert waited < 20
    ready = httpx.get(f"{url}/readyz", timeout=5)
    assert ready.status_code == 503
    body = ready.json()
    assert (body["ready"], body["models"]) == (False, {})
    assert body["reason"].startswith("no champion loaded: ")
    assert SECRET not in ready.text


def test_admin_state_answers_at_once_from_memory_and_the_database(outage: dict[str, Any]) -> None:
    start = time.monotonic()
    state = httpx.get(f"{outage['url']}/v1/admin/state", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    elapsed = time.monotonic() - start
    assert state.status_code == 200, state.text
    assert elapsed < 2.0, elapsed  # one registry call alone would take 2 x 3 s
    assert state.json()["loaded"] == {}
    assert SECRET not in state.text


def test_a_weight_change_in_the_shared_store_applies_within_two_poll_intervals(
    outage: dict[str, Any], params: Params
) -> None:
    runtime = outage["runtime"]
    store = StateStore(outage["settings"].prediction_log_uri, params.routing)
    try:
        target = 0.37 if runtime.routing.current().canary_weight != 0.37 else 0.41
        _until(lambda: runtime.cache.refreshing, within_s=60)  # a model refresh is stuck on the dead registry
        store.update_routing(lambda s: with_weight(s, target))  # as another replica or the controller would
        applied_s = _until(lambda: runtime.routing.current().canary_weight == target, within_s=30)
    finally:
        store.close()
    assert applied_s < 2 * POLL_S + 1.5, applied_s  # a model refresh stuck on the registry takes 6 s
