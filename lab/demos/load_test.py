"""Demo ``load-test``: the real service under bounded load, latency percentiles, then overload.

Concept: load and stress testing (C43). An average hides the users who wait: a load test reports
throughput and latency *percentiles* (p50 is the typical request, p99 the slowest 1 %), at more
than one concurrency, because queueing is what concurrency adds. On one worker a CPU-bound model
server does not get faster with more clients: throughput stays put and latency grows with the
queue (Little's law: requests in flight = throughput x latency). Past capacity, the question is
how the service fails: cheap, explicit refusals (429 with ``Retry-After``) are fine, timeouts and
5xx are not.

The service runs exactly as deployed (``mlops-lab serve``, one uvicorn worker, a free loopback
port, a subprocess) with the load generator of ``make bench`` (`bench.loadgen.run_load`:
threads with keep-alive connections, a request budget and a time cap). Two servers start side by
side: one with its rate limit out of reach, to measure, and one with a low limit, to overload. Both
write to their own prediction log in ``<state>/load-test/``: synthetic traffic must never reach
the log that monitoring, online accuracy and retraining read. Timings come from a shared machine,
so they are shown, never asserted; `make bench` holds the performance targets.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.harness import format_duration
from bench.loadgen import Target, percentile, run_load
from lab.demos.prep import display_path, ensure_champion
from ops.local_servers import Server, free_port, running

if TYPE_CHECKING:
    from bench.loadgen import LoadResult
    from core.context import LabContext
    from core.settings import Settings
    from lab.narrate import Narrator

REQUESTS, CONCURRENCY, CAP_S, WARMUP = 400, (1, 8), 8.0, 20
OVERLOAD_REQUESTS, OVERLOAD_CONCURRENCY = 400, 8
OUT_OF_REACH = {
    "MLOPS_RATE_LIMIT_PER_S": "1e9",
    "MLOPS_RATE_LIMIT_BURST": "1000000000",
}  # the limiter runs, never refuses
LOW_LIMIT = {"MLOPS_RATE_LIMIT_PER_S": "20", "MLOPS_RATE_LIMIT_BURST": "20"}
START_TIMEOUT_S = 120.0
PASSED_ON = ("project_dir", "params_file", "tracking_uri", "registry_uri", "artifact_root", "model_name")


def server_environment(settings: Settings, prediction_log: Path, limits: dict[str, str]) -> dict[str, str]:
    """The environment of a load-test server: these settings, its own prediction log, its rate limit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}  # only what the demo decides
    env |= {f"MLOPS_{name.upper()}": str(value) for name in PASSED_ON if (value := getattr(settings, name)) is not None}
    env |= {"MLOPS_STATE_DIR": str(settings.state), "MLOPS_PREDICTION_LOG_URL": f"sqlite:///{prediction_log}"}
    return env | limits | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}


@contextmanager
def serve_processes(settings: Settings, limits: dict[str, dict[str, str]], folder: Path) -> Iterator[dict[str, int]]:
    """Start one ``mlops-lab serve`` per name at once, wait until each is ready, yield name -> port; stop them.

    Each server logs to ``<folder>/<name>.log`` and keeps a fresh prediction log ``<folder>/<name>.db``.
    A server that exits or is not ready within START_TIMEOUT_S raises RuntimeError with its log's tail.
    """
    ports = {name: free_port() for name in limits}
    cli = str(Path(sys.executable).parent / "mlops-lab")
    servers = {}
    for name, limit in limits.items():
        (folder / f"{name}.db").unlink(missing_ok=True)  # each run starts from an empty log
        env = server_environment(settings, folder / f"{name}.db", limit)
        command = [cli, "serve", "--port", str(ports[name])]
        servers[name] = Server(command, env, ports[name], "/readyz", folder / f"{name}.log")
    with running(servers, START_TIMEOUT_S):
        yield ports


@dataclass
class Flood:
    """Answers to a burst: statuses, connection failures, and the slowest answer per status."""

    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # exception name -> count (timeouts, resets)
    slowest: dict[int, float] = field(default_factory=dict)


def flood(target: Target, concurrency: int, requests: int) -> Flood:
    """``requests`` POSTs from ``concurrency`` threads on keep-alive connections, counting every answer."""
    tickets, lock, result = itertools.count(), threading.Lock(), Flood()

    def worker() -> None:
        conn = target.connect(timeout=10)
        while next(tickets) < requests:
            began = time.perf_counter()
            try:
                status = target.send(conn)
            except (OSError, http.client.HTTPException) as err:
                conn.close()  # http.client reconnects on the next request
                with lock:
                    result.failures[type(err).__name__] += 1
                continue
            took = time.perf_counter() - began
            with lock:
                result.statuses[status] += 1
                result.slowest[status] = max(took, result.slowest.get(status, 0.0))
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return result


def load_rows(result: LoadResult) -> list[object]:
    """One table row: concurrency, sent, ok, errors, req/s, p50, p95, p99."""
    ok = len(result.latencies)
    p = [format_duration(percentile(result.latencies, q)) if ok else "-" for q in (50, 95, 99)]
    return [result.concurrency, ok + result.errors, ok, result.errors, f"{result.requests_per_s:.0f}", *p]


def model_calls(port: int) -> tuple[float, float]:
    """(model calls, rows they scored) so far, read from a running server's ``/metrics``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    samples = dict(line.split(" ", 1) for line in text.splitlines() if line.startswith("mlops_model_call_rows_"))
    return float(samples.get("mlops_model_call_rows_count", 0)), float(samples.get("mlops_model_call_rows_sum", 0))


def _first_refusal(target: Target, attempts: int = 50) -> tuple[int, int, str, str]:
    """Requests to the overloaded server, one at a time, until one is refused (at most ``attempts``).

    The bucket refills while the flood's last answers travel back, so the very next request may be
    admitted; each admitted one takes the new token, and the next one is refused.
    Returns (requests admitted first, status of the last, its Retry-After, its error message).
    """
    conn = target.connect(timeout=10)
    try:
        for admitted in range(attempts):
            conn.request("POST", target.path, target.body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                message = json.loads(body).get("error", "")
                return admitted, response.status, response.getheader("Retry-After") or "-", message
        return attempts, 200, "-", "every request admitted: the limit was not reached"
    finally:
        conn.close()


def run(n: Narrator, ctx: LabContext) -> None:
    """Bounded load at two concurrencies, a table of percentiles, then an overload against a low rate limit."""
    n.title("Load test: percentiles under bounded load, then overload", "C43 load / stress tests")
    n.step("Start the real service twice (`mlops-lab serve`, one worker each, loopback)")
    ensure_champion(ctx, n)
    folder = ctx.settings.state / "load-test"
    row = {name: (spec.min + spec.max) / 2 for name, spec in ctx.params.dataset.features.items()}
    body = json.dumps(row, separators=(",", ":")).encode()
    began = time.perf_counter()
    with serve_processes(ctx.settings, {"measured": OUT_OF_REACH, "limited": LOW_LIMIT}, folder) as ports:
        n.say(
            f"ready in {time.perf_counter() - began:.1f} s: 'measured' (rate limit out of reach) and 'limited' "
            f"({LOW_LIMIT['MLOPS_RATE_LIMIT_PER_S']} requests/s, burst {LOW_LIMIT['MLOPS_RATE_LIMIT_BURST']}); "
            f"their own prediction logs and server logs in {display_path(ctx, folder)}/"
        )
        measured = Target(ports["measured"], "/v1/predict", body)
        n.step(f"Bounded load: {REQUESTS} one-row requests at concurrency {' and '.join(map(str, CONCURRENCY))}")
        run_load(measured, 1, WARMUP, CAP_S)  # warm-up: the first requests pay for lazy imports and caches
        results, batching = [], []
        for c in CONCURRENCY:
            calls_before = model_calls(ports["measured"])
            results.append(run_load(measured, c, REQUESTS, CAP_S))
            calls, scored = (a - b for a, b in zip(model_calls(ports["measured"]), calls_before, strict=True))
            batching.append(scored / calls if calls else 0.0)
        n.table(
            f"POST /v1/predict, capped at {CAP_S:.0f} s per run",
            ["concurrency", "sent", "ok", "errors", "req/s", "p50", "p95", "p99", "rows/call"],
            [[*load_rows(r), f"{b:.1f}"] for r, b in zip(results, batching, strict=True)],
        )
        n.say(
            f"rows per model call: {batching[-1]:.1f} at concurrency {CONCURRENCY[-1]} against {batching[0]:.1f} at "
            f"{CONCURRENCY[0]}: requests that arrive together are scored in one call (micro-batching, "
            "serving/micro_batch.py), so the model's fixed cost per call is shared"
        )
        one, many = results[0], results[-1]
        if one.latencies and many.latencies:
            n.say(
                f"{many.concurrency} clients get {many.requests_per_s / max(one.requests_per_s, 1e-9):.1f}x the "
                f"throughput of one, and the median request waits "
                f"{percentile(many.latencies, 50) / percentile(one.latencies, 50):.1f}x as long"
            )
        (n.ok if all(r.errors == 0 for r in results) else n.bad)(
            f"{sum(r.errors for r in results)} errors (a non-200 answer or a failed connection)"
        )
        n.why(
            "one worker is one CPU-bound loop: past what batching shares, more clients queue instead of going "
            "faster (in flight = throughput x latency). p99 shows the queue first; the client shares the 2 cores, "
            "so this is a floor"
        )

        limited = Target(ports["limited"], "/v1/predict", body)
        n.step(f"Overload: {OVERLOAD_REQUESTS} requests from {OVERLOAD_CONCURRENCY} clients against the low limit")
        burst = flood(limited, OVERLOAD_CONCURRENCY, OVERLOAD_REQUESTS)
        admitted, status, retry_after, message = _first_refusal(limited)
    rows = [[s, c, format_duration(burst.slowest[s])] for s, c in sorted(burst.statuses.items())]
    rows += [[name, c, "-"] for name, c in burst.failures.items()]
    n.table("answers to the flood", ["status", "count", "slowest answer"], rows)
    server_errors = sum(c for s, c in burst.statuses.items() if s >= 500)
    (n.ok if burst.statuses[429] and not server_errors and not burst.failures else n.bad)(
        f"{burst.statuses[429]} refused with 429, {server_errors} server errors, "
        f"{sum(burst.failures.values())} timeouts or broken connections"
    )
    refilled = f"{admitted} admitted on tokens refilled since the flood, then " if admitted else ""
    n.say(f"{refilled}the next request: {status}, Retry-After: {retry_after} s: {message}")
    n.why(
        "past capacity the service refuses early and cheaply (the limiter answers before parsing the body), "
        "tells the client when to retry, and keeps serving what it admitted; timeouts would tie up every client"
    )
    n.code(
        "bench/loadgen.py (run_load, Target, percentile)",
        "serving/micro_batch.py (MicroBatcher)",
        "serving/limits.py (RateLimit)",
        "lab/demos/load_test.py (serve_processes)",
        "ops/local_servers.py",
    )
    n.say("the performance targets live in `make bench` (same load generator, three servers side by side)")
