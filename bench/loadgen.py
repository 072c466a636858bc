"""A small, bounded HTTP load generator for loopback benchmarks and load tests.

Concept: load testing (C43). Two engines, one result type (`LoadResult`: the latencies of the
successful requests, the failures, the wall time):

- `run_load`: ``c`` Python threads, each with one keep-alive ``http.client`` connection, share a
  fixed budget of requests under a time cap. Always available, exact per-request latencies; but on
  a 2-core machine its own CPU competes with the server's, so at c > 1 it measures a floor.
- `run_wrk`: `wrk <https://github.com/wg/wrk>`_ (C, Debian package ``wrk``) for a fixed duration,
  when it is installed. Far cheaper per request, so the server, not the client, is what is measured.
  wrk reports a latency histogram, not every request: the result carries 999 quantiles
  (0.1 %, 0.2 %, ... 99.9 %) in place of the individual latencies, plus the true request count.

Both are bounded: ``run_load`` by count and time, ``run_wrk`` by time (and a process timeout).
`percentile`, `aggregate` and `combine` are pure and unit-tested.
"""

from __future__ import annotations

import http.client
import itertools
import json
import math
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.harness import format_duration


def requests_for(concurrency: int) -> int:
    """Requests per subject and concurrency: 600, or more so each connection sends at least 16."""
    return max(600, 16 * concurrency)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank: always a value that was actually observed."""
    if not values:
        raise ValueError("no values: every request failed or none was sent; see the server logs")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0-100, got {q}")
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)) - 1, 0)]


@dataclass(frozen=True)
class LoadResult:
    """The latencies (s, sorted) of the successful requests of one or more runs; failures; wall time.

    ``completed`` is the number of successful requests when ``latencies`` are quantiles (wrk), not
    one value per request; None means ``len(latencies)``.
    """

    latencies: tuple[float, ...]
    errors: int
    wall_s: float
    concurrency: int
    completed: int | None = None

    @property
    def ok(self) -> int:
        """Successful requests."""
        return len(self.latencies) if self.completed is None else self.completed

    @property
    def requests_per_s(self) -> float:
        return self.ok / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> str:
        """``N req/s, p50 X, p99 Y``, and the failures if there were any."""
        p50, p99 = (format_duration(percentile(self.latencies, q)) for q in (50, 99))
        return f"{self.requests_per_s:.0f} req/s, p50 {p50}, p99 {p99}" + (
            f", {self.errors} FAILED" * bool(self.errors)
        )


def aggregate(per_worker: Sequence[Sequence[float]], errors: int, wall_s: float) -> LoadResult:
    """One run: every worker's latencies pooled and sorted, with the run's failures and wall time."""
    return LoadResult(tuple(sorted(itertools.chain(*per_worker))), errors, wall_s, len(per_worker))


def combine(runs: Sequence[LoadResult]) -> LoadResult:
    """The rounds of one measurement as one: latencies pooled, failures and wall times summed."""
    if not runs or len({r.concurrency for r in runs}) != 1:
        raise ValueError("combine needs at least one run, all at the same concurrency")
    latencies = tuple(sorted(itertools.chain(*(r.latencies for r in runs))))
    completed = None if all(r.completed is None for r in runs) else sum(r.ok for r in runs)
    errors, wall_s = sum(r.errors for r in runs), sum(r.wall_s for r in runs)
    return LoadResult(latencies, errors, wall_s, runs[0].concurrency, completed)


@dataclass(frozen=True)
class Target:
    """One endpoint under load: POST ``body`` (JSON) to ``path`` on the loopback ``port``."""

    port: int
    path: str
    body: bytes
    request_id: str | None = None  # sent as X-Request-Id, so the server's access log can be matched

    def connect(self, timeout: float = 60) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        conn.connect()  # http.client sets TCP_NODELAY, as a real client library would
        return conn

    def send(self, conn: http.client.HTTPConnection) -> int:
        """One request on a keep-alive connection; its HTTP status."""
        headers = {"Content-Type": "application/json"} | ({"X-Request-Id": self.request_id} if self.request_id else {})
        conn.request("POST", self.path, self.body, headers)
        response = conn.getresponse()
        response.read()
        return response.status


def run_load(target: Target, concurrency: int, requests: int, cap_s: float) -> LoadResult:
    """``requests`` POSTs from ``concurrency`` threads, one connection each; stop early after ``cap_s``."""
    tickets, connected, go = itertools.count(), threading.Barrier(concurrency + 1), threading.Event()
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    deadline = math.inf

    def worker(i: int) -> None:
        conn = target.connect()  # before the clock starts
        connected.wait()
        go.wait()
        while next(tickets) < requests and time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                ok = target.send(conn) == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()  # http.client reconnects on the next request
            if ok:
                latencies[i].append(time.perf_counter() - began)
            else:
                errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    connected.wait(timeout=60)
    began = time.perf_counter()
    deadline = began + cap_s
    go.set()
    for thread in threads:
        thread.join(cap_s + 60)
    return aggregate(latencies, sum(errors), time.perf_counter() - began)


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = %s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_RESULT {"requests": %%d, "duration_us": %%d, "socket_errors": %%d, "non2xx": %%d, "q": [',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status))
  for i = 1, 999 do io.write(string.format("%%s%%d", i > 1 and "," or "", latency:percentile(i / 10))) end
  io.write("]}\\n")
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def lua_string(body: bytes) -> str:
    """``body`` as a Lua string literal (long-bracket form, so JSON needs no escaping)."""
    text = body.decode()
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def parse_wrk(output: str, concurrency: int) -> LoadResult:
    """The `LoadResult` in wrk's output (the line our ``done`` hook prints)."""
    line = next((ln for ln in output.splitlines() if ln.startswith("WRK_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result; its output was: {output[-400:]}")
    result = json.loads(line.removeprefix("WRK_RESULT "))
    errors = int(result["socket_errors"]) + int(result["non2xx"])
    quantiles = tuple(sorted(q / 1e6 for q in result["q"]))
    return LoadResult(quantiles, errors, result["duration_us"] / 1e6, concurrency, int(result["requests"]) - errors)


def run_wrk(target: Target, concurrency: int, duration_s: float, threads: int = 1) -> LoadResult:
    """POST ``target.body`` with wrk on ``concurrency`` keep-alive connections for ``duration_s`` seconds."""
    with tempfile.TemporaryDirectory(prefix="wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(WRK_SCRIPT % lua_string(target.body))
        command = ["wrk", f"-t{min(threads, concurrency)}", f"-c{concurrency}", f"-d{duration_s:g}s"]
        command += ["--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{target.port}{target.path}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-400:]}")
    return parse_wrk(done.stdout, concurrency)
