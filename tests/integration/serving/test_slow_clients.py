"""Slow clients against the real app under our uvicorn config, over real sockets on 127.0.0.1.

A "slow loris" opens connections and sends a request's headers a byte at a time (or nothing at all);
a stalled upload declares a body and stops sending it. Without deadlines each holds a socket and a
file descriptor for as long as it likes. Short timeouts come from the settings, so every wait below
is bounded by a few seconds; each client socket has its own receive timeout as a backstop.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from core.params import Params
from core.settings import Settings
from serving.app import create_app
from serving.server import bind_tcp_socket, server_config

pytestmark = [pytest.mark.integration]
HEADER_TIMEOUT_S, BODY_TIMEOUT_S, MAX_CONCURRENCY = 1.0, 1.0, 20
SLACK_S = 4.0  # how late a deadline may fire on a loaded 2-core machine
PARTIAL_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params) -> Iterator[tuple[str, int]]:
    """The app (empty registry) served on a loopback port with short header/body deadlines."""
    settings: Settings = make_settings(
        tmp_path_factory.mktemp("slow") / "state",
        header_timeout_s=HEADER_TIMEOUT_S,
        body_timeout_s=BODY_TIMEOUT_S,
        max_concurrency=MAX_CONCURRENCY,
        rate_limit_per_s=0,
    )
    sock = bind_tcp_socket("127.0.0.1", 0)
    server = uvicorn.Server(server_config(create_app(settings, params), settings, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:  # readiness poll, bounded by the deadline
        assert thread.is_alive(), "uvicorn exited during start-up"
        assert time.monotonic() < deadline, "uvicorn did not start within 60 s"
        time.sleep(0.01)
    try:
        yield sock.getsockname()[:2]
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _connect(address: tuple[str, int], timeout: float = HEADER_TIMEOUT_S + 10) -> socket.socket:
    return socket.create_connection(address, timeout=timeout)


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket.timeout if it never does)."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_a_slow_loris_is_answered_408_and_closed_after_the_header_timeout(edge: tuple[str, int]) -> None:
    with _connect(edge) as loris:
        start = time.monotonic()
        loris.sendall(PARTIAL_HEADERS)
        for _ in range(3):  # keeps trickling: bytes arriving must not extend the deadline
            loris.sendall(b"x")
            time.sleep(HEADER_TIMEOUT_S / 4)
        answer = _read_until_closed(loris)
        elapsed = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"connection: close" in answer.lower()
    assert HEADER_TIMEOUT_S - 0.05 <= elapsed <= HEADER_TIMEOUT_S + SLACK_S, elapsed


def test_a_client_that_connects_and_sends_nothing_is_closed(edge: tuple[str, int]) -> None:
    with _connect(edge) as silent:
        start = time.monotonic()
        answer = _read_until_closed(silent)
        elapsed = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert elapsed <= HEADER_TIMEOUT_S + SLACK_S, elapsed


def _predict_status_counts(address: tuple[str, int]) -> dict[str, float]:
    text = httpx.get(f"http://{address[0]}:{address[1]}/metrics", timeout=10).text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("http_requests_total") and sample.labels.get("route") == "/v1/predict":
                counts[sample.labels["status"]] = sample.value
    return counts


def test_a_stalled_upload_is_answered_408_and_closed_and_counted_as_a_4xx(edge: tuple[str, int]) -> None:
    before = _predict_status_counts(edge)
    with _connect(edge, timeout=BODY_TIMEOUT_S + 10) as stalled:
        start = time.monotonic()
        stalled.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 200\r\n\r\n{"sepal_length": 5.1, '
        )
        answer = _read_until_closed(stalled)
        elapsed = time.monotonic() - start
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert b"connection: close" in head.lower()
    assert b"MLOPS_BODY_TIMEOUT_S" in body
    assert BODY_TIMEOUT_S - 0.05 <= elapsed <= BODY_TIMEOUT_S + SLACK_S, elapsed
    after = _predict_status_counts(edge)
    grew = {status: after[status] - before.get(status, 0.0) for status in after if after[status] != before.get(status)}
    assert grew == {"408": 1.0}  # one 408; no 5xx (and no 499) for the stall


def test_stalled_clients_beyond_the_concurrency_limit_do_not_lock_out_a_new_client(edge: tuple[str, int]) -> None:
    stalled_count = 50  # more than MAX_CONCURRENCY
    url = f"http://{edge[0]}:{edge[1]}/healthz"
    with ExitStack() as stack:
        stalled = [stack.enter_context(_connect(edge)) for _ in range(stalled_count)]
        for sock in stalled:
            sock.sendall(PARTIAL_HEADERS)
        start = time.monotonic()
        first = httpx.get(url, timeout=10)  # answered at once: 503 while the stalled ones fill the limit
        first_s = time.monotonic() - start
        assert first.status_code in (200, 503)
        assert first_s < 2.0, first_s
        closed = [_read_until_closed(sock) for sock in stalled]  # each is reaped by the header deadline
        reaped_s = time.monotonic() - start
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in closed)
    assert reaped_s <= HEADER_TIMEOUT_S + SLACK_S, reaped_s
    assert httpx.get(url, timeout=10).status_code == 200  # the limit is free again
