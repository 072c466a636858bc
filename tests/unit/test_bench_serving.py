"""The serving benchmark's load generator: percentiles, aggregation, request budget and verdicts.

Speed is never asserted (``make bench`` measures it); these tests check that the generator counts,
pools and reports correctly, with made-up latencies and a tiny stdlib HTTP server on loopback.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lab.bench_serving import LoadResult, Target, _throughput_rows, aggregate, combine, percentile, run_load


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


def _rounds(per_request_s: float) -> list[LoadResult]:
    """Three rounds of 100 requests taking ``per_request_s`` of wall time each."""
    return [LoadResult((0.001,) * 100, 0, 100 * per_request_s, 1)] * 3


@pytest.mark.parametrize(
    ("ours", "mlflow", "router_passes", "mlflow_passes"),
    [(1.10, 5.6, True, True), (1.20, 6.5, False, True), (1.10, 5.4, True, False)],
)
def test_throughput_verdicts_follow_the_targets(
    ours: float, mlflow: float, router_passes: bool, mlflow_passes: bool
) -> None:
    runs = {"bare": _rounds(1.0), "mlflow serve": _rounds(mlflow), "ours /v1/predict": _rounds(ours)}
    runs["ours /invocations"] = _rounds(ours)
    predict, invocations, vs_mlflow, bare_vs_mlflow = _throughput_rows(8, runs)
    assert [predict.passed, invocations.passed, vs_mlflow.passed] == [router_passes, router_passes, mlflow_passes]
    assert predict.ratio == pytest.approx(ours)  # time per request: ours / bare
    assert vs_mlflow.ratio == pytest.approx(ours / mlflow)
    assert bare_vs_mlflow.passed is None  # information, no target


class _EveryThirdFails(BaseHTTPRequestHandler):
    """200 for most requests, 500 for every third one (counted across the server)."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the generator expects
    disable_nagle_algorithm = True  # headers and body are two writes: without this, each waits ~40 ms
    lock, count = threading.Lock(), 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            type(self).count += 1
            status = 500 if type(self).count % 3 == 0 else 200
        self.send_response(status)
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


@pytest.mark.parametrize("concurrency", [1, 4])
def test_run_load_spends_exactly_its_request_budget_and_counts_failures(flaky_server: int, concurrency: int) -> None:
    result = run_load(Target(flaky_server, "/predict", b'{"x": 1}'), concurrency, requests=30, cap_s=60)
    assert (len(result.latencies), result.errors, result.concurrency) == (20, 10, concurrency)
    assert _EveryThirdFails.count == 30  # no request beyond the budget
    assert list(result.latencies) == sorted(result.latencies)


def test_server_times_read_the_batch_lines_of_the_access_log_without_the_warm_up() -> None:
    from lab.bench_serving import BATCH_IDS, server_times

    native, mlflow = BATCH_IDS["ours /v1/predict"], BATCH_IDS["ours /invocations"]
    lines = [
        "INFO:     Started server process",
        f'{{"path": "/v1/predict", "status": 200, "latency_ms": 900.0, "request_id": "{native}"}}',  # warm-up
        f'{{"path": "/v1/predict", "status": 200, "latency_ms": 40.0, "request_id": "{native}"}}',
        '{"path": "/v1/predict", "status": 200, "latency_ms": 1.0, "request_id": "other"}',
        f'{{"path": "/invocations", "status": 200, "latency_ms": 800.0, "request_id": "{mlflow}"}}',
        f'{{"path": "/invocations", "status": 503, "latency_ms": 5.0, "request_id": "{mlflow}"}}',
        f'{{"path": "/invocations", "status": 200, "latency_ms": 30.0, "request_id": "{mlflow}"}}',
        f'{{"path": "/invocations", "status": 200, "latency_ms": 50.0, "request_id": "{mlflow}"}}',
    ]
    times = server_times(lines)
    assert times["ours /v1/predict"].samples == (0.04,)
    assert times["ours /invocations"].samples == (0.03, 0.05)  # the failed request is not a timing
    with pytest.raises(RuntimeError, match="MLOPS_ACCESS_LOG"):
        server_times(lines[:3])
