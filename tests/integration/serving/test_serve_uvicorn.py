"""``mlops-lab serve`` under real uvicorn, and TCP_NODELAY on accepted sockets with --workers > 1.

uvicorn issue #3149: with several workers uvicorn binds the listening socket with ``proto=0``, so
asyncio never sets TCP_NODELAY on accepted connections and every keep-alive request after the
first waits ~40 ms for a delayed ACK. `nodelay_app` below reads the option *on the server side*:
each worker finds the accepted socket of the current connection in its own file-descriptor table
(matching the address pair) and answers with its TCP_NODELAY value.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd; #3149 is Linux-specific"),
]
REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent


def _server_side_nodelay(server: tuple[str, int], client: tuple[str, int]) -> int | None:
    """TCP_NODELAY of this process's socket connected from ``client`` to ``server``."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(fd)))  # a duplicate: closing it leaves the original open
        except OSError:
            continue  # not a socket
        with sock:
            try:
                if sock.type == socket.SOCK_STREAM and (sock.getsockname()[:2], sock.getpeername()[:2]) == (
                    tuple(server),
                    tuple(client),
                ):
                    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            except OSError:
                continue  # a listening or unconnected socket
    return None


async def nodelay_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A tiny ASGI app answering ``{"nodelay": 0|1, "pid": ...}`` for the connection it was asked on."""
    if scope["type"] != "http":
        return
    value = _server_side_nodelay(scope["server"], scope["client"])
    body = json.dumps({"nodelay": value, "pid": os.getpid()}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _running(args: list[str], port: int, tmp_path: Path, env: dict[str, str], path: str = "/") -> Iterator[None]:
    """Start a server process, wait (bounded) until ``path`` answers, stop it with SIGTERM afterwards."""
    log = tmp_path / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while True:  # readiness poll, bounded by the deadline
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", path)
                    conn.getresponse().read()
                    conn.close()
                    break
                except OSError:
                    assert proc.poll() is None, f"server exited early:\n{log.read_text()}"
                    assert time.monotonic() < deadline, f"server not up within 90 s:\n{log.read_text()}"
                    time.sleep(0.1)
            yield
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, log.read_text()


def _nodelay_over_keepalive(port: int, connections: int = 6) -> list[tuple[int | None, int]]:
    """(nodelay, worker pid) of the second request on each of several keep-alive connections."""
    seen = []
    for _ in range(connections):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(2):
            conn.request("GET", "/")
            body = json.loads(conn.getresponse().read())
        seen.append((body["nodelay"], body["pid"]))
        conn.close()
    return seen


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.mark.parametrize("loop", ["asyncio", "auto"])
def test_run_server_sets_tcp_nodelay_with_two_workers(tmp_path: Path, loop: str) -> None:
    port = _free_port()
    code = (
        "from serving.server import run_server\n"
        f"run_server('test_serve_uvicorn:nodelay_app', port={port}, workers=2, factory=False, loop={loop!r},"
        " log_level='warning')"
    )
    with _running(_python(code), port, tmp_path, {"PYTHONPATH": f"{HERE}{os.pathsep}{REPO}"}):
        seen = _nodelay_over_keepalive(port)
    assert [nodelay for nodelay, _ in seen] == [1] * len(seen), seen


def test_plain_uvicorn_workers_leave_nagle_on(tmp_path: Path) -> None:
    """The control: the same probe through ``uvicorn.run(workers=2)`` sees the bug, so the probe can see it."""
    port = _free_port()
    code = (
        "import uvicorn\n"
        "if __name__ == '__main__':\n"
        f"    uvicorn.run('test_serve_uvicorn:nodelay_app', port={port}, workers=2, loop='asyncio',"
        " log_level='warning')"
    )
    script = tmp_path / "plain_uvicorn.py"
    script.write_text(code)
    with _running([sys.executable, str(script)], port, tmp_path, {"PYTHONPATH": f"{HERE}{os.pathsep}{REPO}"}):
        seen = _nodelay_over_keepalive(port, connections=2)
    if all(nodelay == 1 for nodelay, _ in seen):
        pytest.skip("this uvicorn sets TCP_NODELAY with workers (#3149 fixed); bind_tcp_socket can go")
    assert all(nodelay == 0 for nodelay, _ in seen), seen


def test_cli_serve_with_two_workers_answers_and_shuts_down_cleanly(tmp_path: Path, make_settings) -> None:
    settings = make_settings(tmp_path / "state")  # a fresh registry with no model yet
    port = _free_port()
    env = {"MLOPS_PROJECT_DIR": str(REPO), "MLOPS_STATE_DIR": str(settings.state), "MLOPS_POLL_INTERVAL_S": "3600"}
    cli = str(Path(sys.executable).with_name("mlops-lab"))
    with _running([cli, "serve", "--port", str(port), "--workers", "2"], port, tmp_path, env, path="/healthz"):
        answers = []
        for path in ("/healthz", "/readyz", "/v2/health/live", "/metrics"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            response = conn.getresponse()
            answers.append((path, response.status, response.read()))
            conn.close()
    statuses = {path: status for path, status, _ in answers}
    assert statuses == {"/healthz": 200, "/readyz": 503, "/v2/health/live": 200, "/metrics": 200}
    ready = json.loads(answers[1][2])
    assert (ready["ready"], ready["models"]) == (False, {})
    assert b"http_requests_total" in answers[3][2]


def test_every_prediction_and_label_is_logged_exactly_once_through_a_sigterm(
    tmp_path: Path, make_settings, params
) -> None:
    """N concurrent requests + their feedback on a 2-worker `mlops-lab serve`, then SIGTERM: N rows of each."""
    from concurrent.futures import ThreadPoolExecutor

    import sqlalchemy as sa

    from pipelines.data import ingest
    from pipelines.training_steps import run_training
    from serving.prediction_log import feedback_table, make_engine, predictions_table

    settings = make_settings(tmp_path / "state")
    run_training(settings, params, ingest(params.dataset, params.ingest, tmp_path / "iris.csv"))
    port = _free_port()
    env = {
        "MLOPS_PROJECT_DIR": str(REPO),
        "MLOPS_STATE_DIR": str(settings.state),
        "MLOPS_RATE_LIMIT_PER_S": "0",  # one loopback client sends everything: no throttling here
    }
    cli = str(Path(sys.executable).with_name("mlops-lab"))
    row = {"sepal_length": 6.1, "sepal_width": 2.8, "petal_length": 4.7, "petal_width": 1.2}
    n = 300

    def predict(headers: dict[str, str]) -> tuple[http.client.HTTPResponse, dict]:
        # `_running` waits for one worker's answer; the other may still be loading its first model and answers
        # 503 (not served, not logged). A client retries that, bounded; any other answer is final.
        deadline = time.monotonic() + 60
        while True:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/v1/predict", json.dumps(row), headers)
            predicted = conn.getresponse()
            body = json.loads(predicted.read())
            conn.close()
            if predicted.status != 503 or time.monotonic() > deadline:
                return predicted, body
            time.sleep(0.05)  # a client's back-off before its retry, not a wait for an event

    def one(i: int) -> tuple[int, int]:
        headers = {"content-type": "application/json", "x-request-id": f"sigterm-{i}"}
        predicted, body = predict(headers)
        assert predicted.status == 200, body
        label = body["predictions"][0]["class"]
        # The label comes on a new connection, so about half reach the other worker: both must honour the
        # feedback token (no key is configured here; `mlops-lab serve` gives its workers one).
        labelling = {**headers, "x-feedback-token": predicted.getheader("x-feedback-token") or ""}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/v1/feedback", json.dumps({"request_id": f"sigterm-{i}", "label": label}), labelling)
        fed = conn.getresponse()
        fed.read()
        conn.close()
        return predicted.status, fed.status

    serve = [cli, "serve", "--port", str(port), "--workers", "2"]
    with _running(serve, port, tmp_path, env, path="/readyz"), ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(one, range(n)))
    # _running sent SIGTERM and asserted a clean exit: the lifespans flushed the logs.
    assert statuses == [(200, 200)] * n
    engine = make_engine(settings.prediction_log_uri)
    with engine.connect() as conn:
        predictions = conn.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(predictions_table.c.request_id)))
        ).one()
        labels = conn.execute(sa.select(sa.func.count()).select_from(feedback_table)).scalar_one()
    engine.dispose()
    assert tuple(predictions) == (n, n)
    assert labels == n
    # The structured access log (stdout, written by a queue listener) has one JSON line per request, also
    # for the requests answered just before the SIGTERM: the listener is drained at shutdown.
    text = (tmp_path / f"server-{port}.log").read_text().splitlines()
    records = [json.loads(line) for line in text if line[:1] == "{"]
    lines = [x for x in records if "path" in x]  # access lines; uvicorn's own lines are JSON too (below)
    assert all(list(x)[:2] == ["ts", "level"] for x in records)
    uvicorn_lines = [x for x in records if x.get("logger", "").startswith("uvicorn")]
    assert any("Started server process" in x["message"] for x in uvicorn_lines)
    assert not [line for line in text if "Started server process" in line and line[:1] != "{"]
    predicted_ids = sorted(x["request_id"] for x in lines if x["path"] == "/v1/predict" and x["status"] == 200)
    assert predicted_ids == sorted(f"sigterm-{i}" for i in range(n))
    assert sum(x["path"] == "/v1/feedback" and x["status"] == 200 for x in lines) == n
    served = [x for x in lines if x["path"] == "/v1/predict" and x["status"] == 200]
    assert all(x["latency_ms"] > 0 and x["arm"] == "champion" for x in served)
