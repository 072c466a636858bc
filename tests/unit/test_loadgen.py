"""The load generator's wrk engine: its Lua script, the parsing of its result, and a real run.

The real run needs the ``wrk`` binary (Debian package ``wrk``; `.ci/run` installs it) and is
skipped without it; the parsing is tested either way.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lab.loadgen import LoadResult, Target, combine, lua_string, parse_wrk, percentile, run_wrk


def test_lua_string_picks_a_long_bracket_level_the_body_does_not_contain() -> None:
    assert lua_string(b'{"a": 1}') == '[[{"a": 1}]]'
    assert lua_string(b'{"a": [[1]]}') == '[=[{"a": [[1]]}]=]'
    assert lua_string(b"]] ]=]") == "[==[]] ]=]]==]"


def test_parse_wrk_reads_counts_errors_and_quantiles() -> None:
    quantiles = ",".join(str(1000 + i) for i in range(1, 1000))  # microseconds
    fields = f'"requests": 500, "duration_us": 2000000, "socket_errors": 2, "non2xx": 8, "q": [{quantiles}]'
    out = f"Running 3s test\nWRK_RESULT {{{fields}}}\n"
    result = parse_wrk(out, concurrency=4)
    assert (result.ok, result.errors, result.wall_s, result.concurrency) == (490, 10, 2.0, 4)
    assert result.requests_per_s == pytest.approx(245.0)
    assert len(result.latencies) == 999
    assert percentile(result.latencies, 50) == pytest.approx(1500e-6)


def test_parse_wrk_without_a_result_line_says_what_wrk_printed() -> None:
    with pytest.raises(RuntimeError, match=r"no result.*unable to connect"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused", 1)


def test_combine_adds_exact_counts_when_latencies_are_quantiles() -> None:
    a = LoadResult((0.001, 0.002), 1, 1.0, 2, completed=100)
    b = LoadResult((0.003,), 0, 1.0, 2, completed=50)
    pooled = combine([a, b])
    assert (pooled.ok, pooled.errors, pooled.wall_s) == (150, 1, 2.0)
    assert pooled.requests_per_s == pytest.approx(75.0)


class _EveryThirdFails(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    lock, count = threading.Lock(), 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            type(self).count += 1
            status = 500 if type(self).count % 3 == 0 else 200
        self.send_response(status if body == b'{"x": [[1]]}' else 400)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky_server() -> Iterator[int]:
    _EveryThirdFails.count = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EveryThirdFails)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_run_wrk_posts_the_body_and_counts_non_2xx_as_errors(flaky_server: int) -> None:
    result = run_wrk(Target(flaky_server, "/p", b'{"x": [[1]]}'), concurrency=2, duration_s=1)
    answered = _EveryThirdFails.count
    assert answered > 30
    assert answered - 2 <= result.ok + result.errors <= answered  # at most one in flight per connection uncounted
    assert abs(3 * result.errors - (result.ok + result.errors)) <= 3 * 2  # every third failed (400s would break it)
    assert list(result.latencies) == sorted(result.latencies)
    assert len(result.latencies) == 999
