"""Demo ``serving-rollback``: promote and roll back while requests keep flowing, and none of them fails.

Concepts: rollback (C15) and zero-downtime hot reload (C28). The registry decides which version
``champion`` is; the service notices an alias move on its next poll, loads the new version *beside*
the old one (requests keep being served meanwhile) and swaps an immutable snapshot in one reference
assignment. A request takes one snapshot when it starts, so it finishes on the model it started
with. Rolling back is the same alias move in the other direction. Here client threads send
requests continuously while the demo promotes and then rolls back; the poll is triggered at once
instead of waiting ``poll_interval_s``.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import TYPE_CHECKING, Any

from lab.demos.prep import ensure_champion
from lab.demos.traffic import ensure_challenger, running_service
from pipelines.registry import promote, rollback

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from core.context import LabContext
    from lab.demos.traffic import DemoService
    from lab.narrate import Narrator

THREADS = 4
PHASE = 120  # requests served in each phase (before, after the promotion, after the rollback)


class Load:
    """Client threads sending single-row requests until stopped; every answer is recorded in order."""

    def __init__(self, client: TestClient, rows: list[dict[str, Any]]) -> None:
        self.client, self.rows = client, rows
        self.answers: list[tuple[int, int, str]] = []  # (thread, status code, model version), completion order
        self._done = threading.Condition()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(k,), daemon=True) for k in range(THREADS)]

    def _send(self, k: int) -> None:
        for i in itertools.count():
            if self._stop.is_set():
                return
            row = self.rows[(k * 31 + i) % len(self.rows)]
            response = self.client.post("/v1/predict", json=row, headers={"X-User-Id": f"rb-{k}-{i % 25}"})
            version = response.json().get("model_version", "-") if response.status_code == 200 else "-"
            with self._done:
                self.answers.append((k, response.status_code, version))
                self._done.notify_all()

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def wait_for(self, more: int, timeout: float = 60.0) -> int:
        """Block until ``more`` further answers arrived; returns the count at the start."""
        with self._done:
            start = len(self.answers)
            self._done.wait_for(lambda: len(self.answers) >= start + more, timeout)
            return start


def _runs(versions: list[str]) -> list[tuple[str, int]]:
    """Run-length encoding: ``["1", "1", "2"]`` -> ``[("1", 2), ("2", 1)]``."""
    return [(version, len(list(group))) for version, group in itertools.groupby(versions)]


def _timeline(versions: list[str]) -> str:
    """``v1 ×130 → v2 ×120 → ...``: the versions served, in order."""
    return " → ".join(f"v{version} ×{count}" for version, count in _runs(versions))


def _protocols(n: Narrator, service: DemoService, rows: list[dict[str, Any]]) -> None:
    """The same rows through the native API (as a batch), MLflow's /invocations and OIP V2 infer."""
    features = service.ctx.params.dataset.feature_names
    values = [[row[f] for f in features] for row in rows]
    native = service.client.post("/v1/predict", json={"rows": rows}).json()
    mlflow = service.client.post("/invocations", json={"dataframe_split": {"columns": features, "data": values}})
    tensor = {"name": "features", "shape": [len(rows), len(features)], "datatype": "FP64", "data": values}
    name = service.ctx.settings.model_name
    oip = service.client.post(f"/v2/models/{name}/infer", json={"inputs": [tensor]}).json()
    answers = {
        "native  POST /v1/predict {rows: [...]}": [p["class"] for p in native["predictions"]],
        "MLflow  POST /invocations (dataframe_split)": mlflow.json()["predictions"],
        f"OIP V2  POST /v2/models/{name}/infer": next(o["data"] for o in oip["outputs"] if o["name"] == "label"),
    }
    n.table("3 rows, one request each", ["protocol", "classes"], [[k, ", ".join(v)] for k, v in answers.items()])
    (n.ok if len({tuple(v) for v in answers.values()}) == 1 else n.bad)(
        f"the same answers from v{native['model_version']} on every protocol: one fitted Pipeline behind them all"
    )
    n.why("clients built for MLflow serving or KServe/Triton work unchanged; the native API adds routing and feedback")


def _outage(n: Narrator, service: DemoService, load: Load) -> None:
    """Make the cache's registry lookup fail, show degraded readiness and zero failures, then recover."""
    cache = service.runtime.cache
    if cache is None:
        raise RuntimeError("the service is not running: use it inside `with running_service(ctx)`")
    real = cache.resolve

    def unreachable(alias: str) -> tuple[str, str] | None:
        raise ConnectionError(f"registry unreachable while resolving {alias!r} (simulated by the demo)")

    cache.resolve = unreachable
    try:
        service.refresh()
        ready = service.client.get("/readyz").json()
        n.say(f"/readyz: ready={ready['ready']}, degraded={ready['degraded']}: {ready['last_registry_error']}")
        start = load.wait_for(PHASE // 2)
        n.ok(f"{PHASE // 2} more requests answered from the cached models during the outage (from #{start})")
    finally:
        cache.resolve = real
    delay = max(0.0, cache.health.next_attempt - cache.clock())
    n.say(f"the registry is back; the cache retries after its backoff ({delay:.1f} s, doubling per failure)")
    time.sleep(delay)  # the real backoff timer: the poll before it would skip the registry
    service.refresh()
    ready = service.client.get("/readyz").json()
    (n.ok if not ready["degraded"] else n.bad)(f"/readyz: degraded={ready['degraded']} after the next poll")
    n.why("an outage of the registry or its database must not become an outage of the predictions")


def run(n: Narrator, ctx: LabContext) -> None:
    """Protocols, then promote, roll back and a registry outage under continuous load; count failures."""
    s = ctx.settings
    n.title(
        "The service under change: rollback, hot reload and an outage, zero failed requests",
        "C15 rollback · C28 hot reload · C49 resilience · C18-C20 serving",
    )
    n.step("One champion behind three protocols, one row or a batch")
    ensure_champion(ctx, n)
    with running_service(ctx) as service:
        if ensure_challenger(ctx, n) is None:
            return
        service.refresh()
        service.route(strategy="canary", canary_weight=0.0)
        frame = service.rows(200, seed=51)
        records = frame[ctx.params.dataset.feature_names].to_dict("records")
        _protocols(n, service, records[:3])

        n.step(f"{THREADS} client threads send requests continuously from here on")
        with Load(service.client, records) as load:
            load.wait_for(PHASE)
            change = promote(s, s.actor, "demo serving-rollback: promote under load")
            n.say(f"promoted in the registry: champion v{change.champion_before} → v{change.champion_after}")
            reloaded = service.refresh()  # the poll every worker runs each poll_interval_s
            n.say(f"next poll: new model loaded beside the old one and swapped atomically (reloaded={reloaded})")
            load.wait_for(PHASE)

            n.step("The new champion misbehaves: roll back, traffic still flowing")
            back = rollback(s, s.actor, "demo serving-rollback: roll back under load")
            n.say(f"rolled back in the registry: champion v{back.champion_before} → v{back.champion_after}")
            service.refresh()
            load.wait_for(PHASE)

            n.step("The registry becomes unreachable (simulated), traffic still flowing")
            _outage(n, service, load)
        answers = load.answers

        n.step("What the clients saw")
        failed = sum(status != 200 for _, status, _ in answers)
        n.say(f"versions served, in completion order: {_timeline([v for _, _, v in answers])}")
        expected = [change.champion_before, change.champion_after, back.champion_after]
        rows: list[list[object]] = []
        for k in range(THREADS):
            seen = [v for thread, _, v in answers if thread == k]
            rows.append([f"client {k + 1}", len(seen), _timeline(seen)])
        n.table("each client thread, in its own order", ["thread", "requests", "versions served"], rows)
        clean = all([v for v, _ in _runs([v for t, _, v in answers if t == k])] == expected for k in range(THREADS))
        (n.ok if clean else n.bad)(
            f"every client switched v{expected[0]} → v{expected[1]} → v{expected[2]} exactly once each way"
            if clean
            else "a client saw versions flip back and forth"
        )
        (n.ok if failed == 0 else n.bad)(f"{len(answers)} requests, {failed} failed requests")
        n.why(
            "a request takes one snapshot of the loaded models when it starts and finishes on it; the swap is one "
            "reference assignment, and loading happens beside the old model, off the request path"
        )
        n.say(
            f"v{back.champion_before} is tagged rolled_back with the reason; `previous` is cleared (one level of "
            "undo), and the challenger alias went with the promotion"
        )
    n.code(
        "serving/app.py",
        "serving/mlflow_protocol.py",
        "serving/oip.py",
        "pipelines/registry.py (promote, rollback)",
        "serving/model_cache.py (refresh, snapshot)",
        "serving/runtime.py (Poller)",
        "serving/predict.py (Predictor.decide)",
    )
