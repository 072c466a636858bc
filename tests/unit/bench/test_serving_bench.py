"""The serving benchmark's verdicts and its reading of the access log (the load generator: test_loadgen.py).

Speed is never asserted (``make bench`` measures it); these tests check that the generator counts,
pools and reports correctly, with made-up latencies and a tiny stdlib HTTP server on loopback.
"""

from __future__ import annotations

import pytest

from bench.loadgen import LoadResult
from bench.serving_bench import _throughput_rows


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


def test_server_times_read_the_batch_lines_of_the_access_log_without_the_warm_up() -> None:
    from bench.serving_bench import BATCH_IDS, server_times

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
