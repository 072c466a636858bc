"""Serving benchmark: our API against a bare FastAPI endpoint and ``mlflow models serve``, side by side.

Concept: performance as evidence (DESIGN.md, "Performance targets"). The serving targets are
ratios: the router and prediction log may cost at most 15 % of a bare endpoint's throughput, and we
must do at least 5x the requests/s of ``mlflow models serve``; plus p50 under 1 ms at concurrency 1
and a 10,000-row batch in under 100 ms. So three servers run at once from one freshly trained
registry, each its own process with one uvicorn worker on a free loopback port:

- **ours**: ``mlops-lab serve`` (``/v1/predict`` and ``/invocations``), exactly as deployed;
- **bare**: `bare_app`, one ``async`` FastAPI route that parses the JSON, builds the DataFrame and
  calls the champion's ``predict_proba``, run by the same `lab.commands.serve.run_server`;
- **mlflow**: ``mlflow models serve --env-manager local`` for ``models:/<name>@champion``.

The load generator is small and bounded (wrk is not on the box): ``c`` threads, each with one
keep-alive ``http.client`` connection, share a fixed budget of requests under a time cap. Each
measurement is split into rounds and the subjects' rounds alternate, so a burst of machine load
hits them alike. The client runs in this process: on 2 cores its CPU competes with the server's, so
at c > 1 the figures are a floor on each server's capacity and only their ratios compare.
`percentile`, `aggregate` and `combine` are pure and unit-tested; processes are started and heavy
libraries imported only inside the measurement. The servers' logs stay in the state folder's
``reports/bench-serving-<name>.log``; a line our server logs about dropped records becomes a note.
"""

from __future__ import annotations

import http.client
import itertools
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request  # imported for real: FastAPI reads `bare_app`'s annotations at runtime
from fastapi.responses import JSONResponse

from lab.bench import BenchEnv, Row, Section, Timing, format_duration, time_calls, time_interleaved

CONCURRENCY, ROUNDS, ROUND_CAP_S, WARMUP = (1, 8, 64), 3, 8.0, 20
BATCH_ROWS, BATCH_REPEATS, START_TIMEOUT_S = 10_000, 5, 120.0
HEALTH = {"ours": "/readyz", "bare": "/docs", "mlflow": "/ping"}


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
    """The latencies (s, sorted) of the successful requests of one or more runs; failures; wall time."""

    latencies: tuple[float, ...]
    errors: int
    wall_s: float
    concurrency: int

    @property
    def requests_per_s(self) -> float:
        return len(self.latencies) / self.wall_s if self.wall_s > 0 else 0.0

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
    return LoadResult(latencies, sum(r.errors for r in runs), sum(r.wall_s for r in runs), runs[0].concurrency)


@dataclass(frozen=True)
class Target:
    """One endpoint under load: POST ``body`` (JSON) to ``path`` on the loopback ``port``."""

    port: int
    path: str
    body: bytes

    def connect(self, timeout: float = 60) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        conn.connect()  # http.client sets TCP_NODELAY, as a real client library would
        return conn

    def send(self, conn: http.client.HTTPConnection) -> int:
        """One request on a keep-alive connection; its HTTP status."""
        conn.request("POST", self.path, self.body, {"Content-Type": "application/json"})
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


def bare_app() -> FastAPI:
    """The baseline (a uvicorn factory): one route calling the champion's estimator, and nothing else."""
    import mlflow
    import pandas as pd

    from lab.settings import configure_runtime, get_settings
    from pipelines.params import load_params
    from pipelines.registry import mlflow_client

    settings = get_settings()
    configure_runtime(settings)
    mlflow_client(settings)
    model = mlflow.sklearn.load_model(f"models:/{settings.model_name}@champion")
    features, classes = load_params(settings.params_path).dataset.feature_names, [str(c) for c in model.classes_]
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        probabilities = model.predict_proba(pd.DataFrame.from_records(body.get("rows") or [body], columns=features))
        answers = [{"class": classes[p.argmax()], "probabilities": dict(zip(classes, p.tolist(), strict=True))}
                   for p in probabilities]  # fmt: skip
        return JSONResponse({"predictions": answers})

    return app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int, path: str) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False


@contextmanager
def servers(commands: dict[str, list[str]], ports: dict[str, int], env: dict[str, str], logs: Path) -> Iterator[float]:
    """Start every server in its own process group (log: ``logs/bench-serving-<name>.log``), wait (bounded)
    until each is healthy, yield the start-up time; afterwards SIGTERM each group (SIGKILL after 30 s).
    A server that dies or stays unhealthy fails the benchmark with the tail of its log."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    began = time.monotonic()
    try:
        for name, cmd in commands.items():
            with (logs / f"bench-serving-{name}.log").open(
                "wb"
            ) as out:  # the child keeps its own copy of the descriptor
                procs[name] = subprocess.Popen(
                    cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
        waiting = set(procs)
        while waiting:
            for name in sorted(waiting):
                if _answers(ports[name], HEALTH[name]):
                    waiting.discard(name)
                elif procs[name].poll() is not None or time.monotonic() - began > START_TIMEOUT_S:
                    tail = (logs / f"bench-serving-{name}.log").read_text(errors="replace")[-600:]
                    raise RuntimeError(f"the {name} server did not come up on port {ports[name]}: ...{tail}")
            time.sleep(0.2)
        yield time.monotonic() - began
    finally:
        for proc in procs.values():
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _bodies(frame: Any, features: list[str]) -> dict[str, bytes]:
    """One row (native, MLflow records) and the batch (native ``rows``, MLflow ``dataframe_split``)."""
    row, split = frame.iloc[0].to_dict(), {"columns": features, "data": frame.to_numpy().tolist()}
    bodies = {"row": row, "mlflow_row": {"dataframe_records": [row]}, "rows": {"rows": frame.to_dict("records")}}
    bodies["mlflow_rows"] = {"dataframe_split": split}
    return {name: json.dumps(body, separators=(",", ":")).encode() for name, body in bodies.items()}


def _targets(ports: dict[str, int], bodies: dict[str, bytes], batch: bool = False) -> dict[str, Target]:
    """The four subjects, with the one-row or the batch bodies."""
    native, mlflow = ("rows", "mlflow_rows") if batch else ("row", "mlflow_row")
    return {
        "ours /v1/predict": Target(ports["ours"], "/v1/predict", bodies[native]),
        "ours /invocations": Target(ports["ours"], "/invocations", bodies[mlflow]),
        "bare": Target(ports["bare"], "/predict", bodies[native]),
        "mlflow serve": Target(ports["mlflow"], "/invocations", bodies[mlflow]),
    }


def _commands(model_name: str, ports: dict[str, int]) -> dict[str, list[str]]:
    """The three servers, one uvicorn worker each."""
    venv, uri = Path(sys.executable).parent, f"models:/{model_name}@champion"
    bare = f"from lab.commands.serve import run_server; run_server('lab.bench_serving:bare_app', port={ports['bare']})"
    mlflow = ["models", "serve", "-m", uri, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(ports["mlflow"])]
    return {
        "ours": [str(venv / "mlops-lab"), "serve", "--port", str(ports["ours"]), "--workers", "1"],
        "bare": [sys.executable, "-c", bare],
        "mlflow": [str(venv / "mlflow"), *mlflow, "-w", "1"],
    }


def _environment(settings: Any) -> dict[str, str]:
    """The servers' environment: this state folder and nothing from MLOPS_* (never a real registry)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    return env | {
        "MLOPS_PROJECT_DIR": str(settings.project_dir),
        "MLOPS_STATE_DIR": str(settings.state),
        "MLOPS_RATE_LIMIT_PER_S": "1e9",  # the limiter still runs (its cost is measured) but never refuses
        "MLOPS_RATE_LIMIT_BURST": "1000000000",
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def _batch_call(target: Target, logs: Path) -> Callable[[], None]:
    conn = target.connect()

    def call() -> None:
        if (status := target.send(conn)) != 200:
            raise RuntimeError(f"{target.path} answered {status} to a {BATCH_ROWS:,}-row batch; see {logs}")

    return call


def measure_serving(env: BenchEnv) -> Section:
    """One row at each concurrency, and a 10,000-row batch: ours, bare FastAPI and mlflow serve."""
    import mlflow

    from lab.bench_sections import _quiet
    from lab.settings import Settings, configure_runtime
    from pipelines.data import ingest
    from pipelines.registry import mlflow_client
    from pipelines.training import load_data, run_training

    features = list(env.params.dataset.feature_names)
    with tempfile.TemporaryDirectory(prefix="mlops-lab-bench-") as tmp:
        settings = Settings(project_dir=env.settings.project_dir, state_dir=Path(tmp) / "state", tracking_uri=None,
                            registry_uri=None, artifact_root=None)  # fmt: skip
        configure_runtime(settings)
        data = ingest(env.params.dataset, env.params.ingest, Path(tmp) / "train.csv")
        with _quiet():
            if (status := run_training(settings, env.params, data_path=data).status) != "registered":
                raise RuntimeError(f"the benchmark's training run ended {status!r}; run `mlops-lab train` to see why")
        frame = load_data(data).frame[features].sample(BATCH_ROWS, replace=True, random_state=0)
        bodies, ports = _bodies(frame, features), {name: _free_port() for name in HEALTH}
        logs = env.settings.reports_dir  # kept after the run: the servers' logs, for a failure or a finding
        logs.mkdir(parents=True, exist_ok=True)
        env.say(f"  starting ours, bare FastAPI and mlflow serve (logs in {logs}; mlflow takes 15-30 s) ...")
        with servers(_commands(settings.model_name, ports), ports, _environment(settings), logs) as start_s:
            one = _targets(ports, bodies)
            for name, target in one.items():
                if warm := run_load(target, 1, WARMUP, ROUND_CAP_S).errors:
                    raise RuntimeError(f"{name}: {warm} of {WARMUP} warm-up requests failed; see {logs}")
            runs: dict[int, dict[str, list[LoadResult]]] = {c: {n: [] for n in one} for c in CONCURRENCY}
            for c in CONCURRENCY:
                env.say(f"  concurrency {c}: {requests_for(c)} requests per subject, {ROUNDS} interleaved rounds ...")
                for _, (name, target) in itertools.product(range(ROUNDS), one.items()):
                    runs[c][name].append(run_load(target, c, requests_for(c) // ROUNDS, ROUND_CAP_S))
            env.say(f"  {BATCH_ROWS:,}-row batches ...")
            calls = {name: _batch_call(target, logs) for name, target in _targets(ports, bodies, batch=True).items()}
            for call in calls.values():
                call()  # warm-up; a refused batch fails here, naming its status
            batch = time_interleaved(calls, BATCH_REPEATS)
        warnings = [line for line in (logs / "bench-serving-ours.log").read_text().splitlines() if "dropped" in line]
        mlflow_client(settings)
        with _quiet():
            model = mlflow.sklearn.load_model(f"models:/{settings.model_name}@champion")
        alone = {"row": time_calls(lambda: model.predict_proba(frame.iloc[:1]), 200, warmup=20)}
        alone["batch"] = time_calls(lambda: model.predict_proba(frame), BATCH_REPEATS, warmup=1)
    return _section(runs, batch, alone, start_s, bodies, warnings)


def _per_request(rounds: Sequence[LoadResult]) -> Timing:
    """Wall time per successful request, one sample per round: 1 / throughput, so lower is faster."""
    return Timing(tuple(r.wall_s / max(len(r.latencies), 1) for r in rounds))


def _throughput_rows(c: int, runs: dict[str, list[LoadResult]]) -> list[Row]:
    t = {name: _per_request(rounds) for name, rounds in runs.items()}
    bare, mlflow, what = t["bare"], t["mlflow serve"], f"time per request, c={c}"
    rows = [
        Row(what, "bare FastAPI", f"ours `{path}`", bare, t[f"ours {path}"], "≤ 1.18× (≤ 15 % fewer req/s)",
            t[f"ours {path}"].median <= bare.median / 0.85)
        for path in ("/v1/predict", "/invocations")
    ]  # fmt: skip
    ours = t["ours /invocations"]
    rows.append(Row(what, "`mlflow models serve`", "ours `/invocations`", mlflow, ours, "≤ 0.20× (≥ 5× the req/s)",
                    ours.median <= 0.2 * mlflow.median))  # fmt: skip
    return [*rows, Row(what, "`mlflow models serve`", "bare FastAPI", mlflow, bare)]


def _load_note(c: int, by: dict[str, LoadResult]) -> str:
    """Each subject's req/s, p50 and p99 at concurrency ``c``, then the throughput ratios the targets name."""
    rps = {name: result.requests_per_s for name, result in by.items()}

    def ratio(subject: str, baseline: str) -> str:
        return f"{rps[subject] / rps[baseline]:.2f}×" if rps[baseline] else "n/a"

    return (
        f"c={c}: " + "; ".join(f"{name} {result.summary()}" for name, result in by.items()) + ". Requests/s "
        f"ratios: ours/bare {ratio('ours /v1/predict', 'bare')} (`/v1/predict`), "
        f"{ratio('ours /invocations', 'bare')} (`/invocations`); ours/mlflow serve "
        f"{ratio('ours /invocations', 'mlflow serve')} (`/invocations`), {ratio('ours /v1/predict', 'mlflow serve')} "
        "(`/v1/predict`)."
    )


def _section(
    runs: dict[int, dict[str, list[LoadResult]]],
    batch: dict[str, Timing],
    alone: dict[str, Timing],
    start_s: float,
    bodies: dict[str, bytes],
    warnings: list[str],
) -> Section:
    combined = {c: {name: combine(rounds) for name, rounds in by.items()} for c, by in runs.items()}
    c1, rows = combined[CONCURRENCY[0]], [r for c in CONCURRENCY for r in _throughput_rows(c, runs[c])]
    ours_p50, bare_p50 = (percentile(c1[name].latencies, 50) for name in ("ours /v1/predict", "bare"))
    native, mlflow, n = batch["ours /v1/predict"], batch["ours /invocations"], f"{BATCH_ROWS:,}-row batch"
    rows += [
        Row(f"latency at c={CONCURRENCY[0]} (median = p50)", "bare FastAPI", "ours `/v1/predict`",
            Timing(c1["bare"].latencies), Timing(c1["ours /v1/predict"].latencies), "subject < 1 ms", ours_p50 < 1e-3),
        Row(f"{n}, round trip", "bare FastAPI", "ours `/v1/predict` (`rows`)", batch["bare"], native,
            "subject < 100 ms", native.median < 0.1),
        Row(f"{n}, round trip", "`mlflow models serve`", "ours `/invocations` (dataframe_split)", batch["mlflow serve"],
            mlflow, "subject < 100 ms", mlflow.median < 0.1),
        Row(n, "estimator alone, in-process", "ours `/v1/predict`, round trip", alone["batch"], native),
    ]  # fmt: skip
    notes = [_load_note(c, by) for c, by in combined.items()]
    notes += [
        f"The three servers were healthy {start_s:.0f} s after start (mlflow serve comes up last). Ours ran with "
        "its rate limit out of reach (the limiter still runs); all else is the default configuration, including "
        "uvicorn's access log, our prediction log (SQLite, written off the request path) and metrics.",
        f"Bodies: one row {len(bodies['row'])} B ({len(bodies['mlflow_row'])} B as MLflow records); the batch "
        f"{len(bodies['rows']) / 1e6:.2f} MB as `rows`, {len(bodies['mlflow_rows']) / 1e6:.2f} MB as dataframe_split. "
        "A round trip includes the server's JSON parsing and the transfer: an upper bound on server time.",
        f"One-row `predict_proba` of the estimator alone, in-process: {format_duration(alone['row'].median)} "
        f"(n={len(alone['row'].samples)}); the rest of ours' p50 ({format_duration(ours_p50)}) is HTTP, JSON, "
        f"validation, routing and logging; the bare endpoint's p50 is {format_duration(bare_p50)}.",
        f"Servers: uvicorn {version('uvicorn')}, FastAPI {version('fastapi')}; `mlflow models serve` is FastAPI on "
        "uvicorn too, so its gap to a bare endpoint is its own pyfunc wrapper and input parsing.",
    ]
    bare_x = c1["bare"].requests_per_s / max(c1["mlflow serve"].requests_per_s, 1e-9)
    if bare_x < 5:
        notes.append(
            f"Even the bare endpoint does only {bare_x:.1f}× mlflow serve's requests/s at c={CONCURRENCY[0]} here "
            "(the target assumed about 5.5×): 5× is out of reach for a FastAPI service of this model on this machine."
        )
    notes += [
        f"Our server's log during the run: `{line.strip()}` (a finding, not a benchmark error)." for line in warnings
    ]
    intro = (
        "Three servers from one freshly trained registry, one uvicorn worker each, on loopback, loaded by a "
        f"keep-alive client in this process: one-row requests in {ROUNDS} interleaved rounds per subject and "
        f"concurrency (each round capped at {ROUND_CAP_S:.0f} s). *Time per request* is wall time over successful "
        "requests (1 / throughput): a ratio below 1 means the subject serves more requests/s than the baseline."
    )
    return Section("Serving over HTTP", intro, rows, notes)
