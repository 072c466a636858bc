"""Micro-batching under our uvicorn config over real sockets: a lone request pays no loop turn, a burst batches.

The server publishes its worker's request tasks in each scope (`serving.slow_clients`), so the batcher
knows when a request is alone. Sequential requests on one keep-alive connection (concurrency 1) are
scored at once; requests whose bytes wait in the sockets while the event loop is held (by a callback
blocked on a threading.Event, released once every request was sent) all start in one turn and share
one model call.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from core.params import Params
from core.settings import Settings
from pipelines.data import ingest
from pipelines.training_steps import run_training
from serving.app import create_app
from serving.server import bind_tcp_socket, server_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROW = b'{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}'
BURST = 6


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params) -> Iterator[dict[str, Any]]:
    """A trained registry served by a real uvicorn (our config) on a loopback port, in a thread."""
    root = tmp_path_factory.mktemp("micro-batch-server")
    settings: Settings = make_settings(root / "state", poll_interval_s=3600, rate_limit_per_s=0)
    assert run_training(settings, params, ingest(params.dataset, params.ingest, root / "iris.csv")).status == (
        "registered"
    )
    app = create_app(settings, params)
    sock = bind_tcp_socket("127.0.0.1", 0)
    server = uvicorn.Server(server_config(app, settings, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:  # readiness poll, bounded by the deadline
        assert thread.is_alive(), "uvicorn exited during start-up"
        assert time.monotonic() < deadline, "uvicorn did not start within 120 s"
        time.sleep(0.01)
    try:
        yield {"address": sock.getsockname()[:2], "app": app, "loop": server.servers[0].get_loop()}
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def batcher_of(served: dict[str, Any]) -> Any:
    return served["app"].state.runtime._batcher


def test_sequential_requests_are_each_scored_alone_without_a_loop_turn(served: dict[str, Any]) -> None:
    batcher = batcher_of(served)
    host, port = served["address"]
    flushes, alone = batcher.flushes, batcher.alone
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=30) as client:
        for path in ("/v1/predict", "/invocations") * 5:
            body = ROW if path == "/v1/predict" else b'{"dataframe_records": [' + ROW + b"]}"
            answer = client.post(path, content=body, headers={"content-type": "application/json"})
            assert answer.status_code == 200, answer.text
    assert (batcher.flushes - flushes, batcher.alone - alone) == (10, 10)


def test_requests_that_arrive_together_over_http_share_one_model_call(served: dict[str, Any]) -> None:
    batcher, loop = batcher_of(served), served["loop"]
    request = (
        b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(ROW), ROW)
    )
    connections = [socket.create_connection(served["address"], timeout=30) for _ in range(BURST)]
    try:
        for conn in connections:  # each connection accepted and served once: a kept-alive idle connection
            conn.sendall(request)
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
        flushes, alone = batcher.flushes, batcher.alone
        held, release = threading.Event(), threading.Event()

        def hold_the_loop() -> None:
            held.set()
            release.wait(timeout=30)  # bounded: the test releases it as soon as every request is sent

        loop.call_soon_threadsafe(hold_the_loop)
        assert held.wait(timeout=30)
        for conn in connections:  # in the kernel's buffers when sendall returns (loopback)
            conn.sendall(request)
        release.set()
        answers = [_read_answer(conn) for conn in connections]
    finally:
        for conn in connections:
            conn.close()
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)
    assert (batcher.flushes - flushes, batcher.alone - alone) == (1, 0)


def _read_answer(conn: socket.socket) -> bytes:
    """One whole HTTP answer (headers and a Content-Length body) from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return data
