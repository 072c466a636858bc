"""The load generator: percentiles and pooling, the Python engine's request budget, and the wrk engine.

The wrk run needs the ``wrk`` binary (Debian package ``wrk``; `.ci/run` installs it) and is skipped
without it; the parsing of its output is tested either way. Speed is never asserted here.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.loadgen import (
    LoadResult,
    Target,
    aggregate,
    combine,
    lua_string,
    parse_wrk,
    percentile,
    run_load,
    run_wrk,
)
from tests.system_tools import system_tool


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0, 1.0), (1, 1.0), (50, 50.0), (90, 90.0), (99, 99.0), (99.5, 100.0), (100, 100.0)],
)
def test_percentile_is_the_nearest_rank_of_the_sorted_values(q: float, expected: float) -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100..1, unsorted on purpose
    assert percentile(values, q) == expected


def test_percentile_of_few_values_is_always_an_observed_one() -> None:
    assert percentile([0.003], 99) == 0.003
    assert percentile([0.002, 0.001], 50) == 0.001  # nearest rank: no interpolation to 0.0015
    assert percentile([0.002, 0.001], 51) == 0.002


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], -1), ([1.0], 100.1)])
def test_percentile_rejects_no_values_and_q_out_of_range(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match=r"no values|0-100"):
        percentile(values, q)


def test_aggregate_pools_every_worker_sorted_with_throughput_over_wall_time() -> None:
    result = aggregate([[0.003, 0.001], [0.002], []], errors=2, wall_s=0.5)
    assert result == LoadResult((0.001, 0.002, 0.003), 2, 0.5, 3)
    assert result.requests_per_s == pytest.approx(6.0)  # successful requests only
    assert LoadResult((), 0, 0.0, 1).requests_per_s == 0.0


def test_combine_pools_rounds_and_adds_up_failures_and_wall_time() -> None:
    rounds = [aggregate([[0.004], [0.001]], 1, 1.0), aggregate([[0.002], [0.003]], 0, 3.0)]
    pooled = combine(rounds)
    assert pooled == LoadResult((0.001, 0.002, 0.003, 0.004), 1, 4.0, 2)
    assert pooled.requests_per_s == pytest.approx(1.0)
    assert percentile(pooled.latencies, 50) == 0.002


def test_combine_refuses_nothing_and_mixed_concurrency() -> None:
    with pytest.raises(ValueError, match="same concurrency"):
        combine([])
    with pytest.raises(ValueError, match="same concurrency"):
        combine([aggregate([[0.001]], 0, 1.0), aggregate([[0.001], [0.002]], 0, 1.0)])


def test_summary_shows_throughput_percentiles_and_failures() -> None:
    latencies = tuple(i / 1000 for i in range(1, 101))  # 1..100 ms
    assert LoadResult(latencies, 0, 2.0, 1).summary() == "50 req/s, p50 50 ms, p99 99 ms"
    assert LoadResult(latencies, 3, 2.0, 1).summary().endswith(", 3 FAILED")


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
        self.send_response(status if body.startswith(b'{"x": ') else 400)  # the body was really posted
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """wrk resets its connections when its time is up: expected here, so no traceback on stderr."""
        if not isinstance(sys.exc_info()[1], ConnectionResetError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture
def flaky_server() -> Iterator[int]:
    _EveryThirdFails.count = 0
    server = _QuietServer(("127.0.0.1", 0), _EveryThirdFails)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_run_wrk_posts_the_body_and_counts_non_2xx_as_errors(flaky_server: int) -> None:
    system_tool("wrk")
    result = run_wrk(Target(flaky_server, "/p", b'{"x": [[1]]}'), concurrency=2, duration_s=1)
    answered = _EveryThirdFails.count
    assert answered > 30
    assert answered - 2 <= result.ok + result.errors <= answered  # at most one in flight per connection uncounted
    assert abs(3 * result.errors - (result.ok + result.errors)) <= 3 * 2  # every third failed (400s would break it)
    assert list(result.latencies) == sorted(result.latencies)
    assert len(result.latencies) == 999


@pytest.mark.parametrize("concurrency", [1, 4])
def test_run_load_spends_exactly_its_request_budget_and_counts_failures(flaky_server: int, concurrency: int) -> None:
    result = run_load(Target(flaky_server, "/predict", b'{"x": 1}'), concurrency, requests=30, cap_s=60)
    assert (len(result.latencies), result.errors, result.concurrency) == (20, 10, concurrency)
    assert _EveryThirdFails.count == 30  # no request beyond the budget
    assert list(result.latencies) == sorted(result.latencies)
