"""The deployed rollout controller as real processes: the command docker/compose.yaml and k8s run.

Two controllers (as two replicas would be) run `mlops-lab rollout run --watch` against one temporary
state: a real MLflow registry (SQLite) with v1 champion and v2 challenger, and the shared state store
and prediction log. Traffic is written into the prediction log directly, as the API would log it.
The controllers pick the started canary up, step it exactly once on one window of evidence (both keep
ticking on the same database), abort it when the challenger starts failing, stay up while idle, answer
the heartbeat probe, and exit 0 within seconds of SIGTERM. Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from core.params import Params
from core.settings import Settings
from pipelines.data import ingest
from pipelines.registry import list_versions
from pipelines.training_steps import run_training
from serving.log_schema import feedback_table, make_engine, metadata, predictions_table
from serving.rollout_controller import begin_rollout
from serving.rollout_watch import HEARTBEAT_FILE, read_heartbeat
from serving.state_store import StateStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
FAST = ["--interval", "0.2", "--max-backoff", "1"]  # appended: the last value of an option wins
_ids = itertools.count()


def compose_service(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "docker/compose.yaml").read_text())["services"][name])


def wait_for(condition: Callable[[], Any], what: str, deadline_s: float = 60.0) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after the deadline."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if result := condition():
            return result
        time.sleep(0.1)  # polling interval of a condition with a deadline, not synchronisation
    pytest.fail(f"timed out after {deadline_s:g} s waiting for {what}")


def serve(engine: sa.Engine, arm: str, version: str, n: int, *, errors: int = 0) -> None:
    """n logged requests on one arm, now, each labelled correct; the first ``errors`` failed."""
    at = datetime.now(UTC)
    rows = [
        {
            "request_id": f"p{next(_ids)}",
            "ts": at,
            "model_name": "iris-classifier",
            "model_version": version,
            "arm": arm,
            "strategy": "canary",
            "features": {"sepal_length": 5.0},
            "prediction": None if i < errors else "setosa",
            "latency_ms": 3.0,
            "status": "error" if i < errors else "ok",
        }
        for i in range(n)
    ]
    labels = [{"request_id": r["request_id"], "ts": at, "label": "setosa"} for r in rows if r["status"] == "ok"]
    with engine.begin() as conn:
        conn.execute(sa.insert(predictions_table), rows)
        if labels:
            conn.execute(sa.insert(feedback_table), labels)


@dataclass
class Controller:
    proc: subprocess.Popen[bytes]
    heartbeat: Path
    log: Path

    def ticks(self) -> int:
        try:
            return int(read_heartbeat(self.heartbeat)["ticks"])
        except (FileNotFoundError, ValueError):
            return 0

    def output(self) -> str:
        return self.log.read_text()


@pytest.fixture
def world(tmp_path: Path, make_settings: Callable[..., Settings], params: Params) -> Iterator[tuple[Any, ...]]:
    settings = make_settings(tmp_path / "state")
    data = ingest(params.dataset, params.ingest, tmp_path / "iris.csv")
    for _ in range(2):  # v1 champion, v2 challenger
        assert run_training(settings, params, data).status == "registered"
    store = StateStore(settings.prediction_log_uri, params.routing)
    engine = make_engine(settings.prediction_log_uri)
    metadata.create_all(engine)
    yield settings, params, store, engine
    engine.dispose()
    store.close()


def start_controller(settings: Settings, tmp_path: Path, name: str, heartbeat: Path | None) -> Controller:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "PREFECT_", "MLFLOW_"))}
    env |= {"MLOPS_STATE_DIR": str(settings.state), "MLOPS_PROJECT_DIR": str(REPO)}
    command = list(compose_service("rollout-controller")["command"]) + FAST
    command[0] = str(Path(sys.executable).with_name(command[0]))  # this venv's mlops-lab
    if heartbeat is not None:
        command += ["--heartbeat", str(heartbeat)]
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:  # a file, not a pipe: a chatty child can never block on a full pipe
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Controller(proc, heartbeat or settings.state / HEARTBEAT_FILE, log)


def test_two_watching_controllers_step_once_abort_and_stop_on_sigterm(world: tuple[Any, ...], tmp_path: Path) -> None:
    settings, params, store, engine = world
    begin_rollout(settings, params, store)
    first, second = params.rollout.steps[0] / 100, params.rollout.steps[1] / 100
    controllers = [
        start_controller(settings, tmp_path, "one", None),  # the heartbeat where the probe looks by default
        start_controller(settings, tmp_path, "two", tmp_path / "two.heartbeat"),
    ]
    try:
        wait_for(lambda: all(c.ticks() >= 2 or c.proc.poll() is not None for c in controllers), "first ticks")
        for c in controllers:
            assert c.proc.poll() is None, c.output()
        assert store.rollout().weight == pytest.approx(first), "no traffic yet: nothing moves"

        # One window of passing evidence: exactly one step, though both controllers keep analysing.
        n = params.rollout.min_requests
        serve(engine, "champion", "1", n)
        serve(engine, "challenger", "2", n)
        wait_for(lambda: store.rollout().weight == pytest.approx(second), "the step to the second weight")
        after = [c.ticks() for c in controllers]
        wait_for(lambda: all(c.ticks() >= t + 5 for c, t in zip(controllers, after, strict=True)), "more ticks")
        state = store.rollout()
        assert state.weight == pytest.approx(second), "no second step on the same evidence"
        assert [e.event for e in state.history].count("step") == 1
        assert store.routing().canary_weight == pytest.approx(second)

        # The probe compose runs (readiness: fresh heartbeat and a good last tick).
        probe = compose_service("rollout-controller")["healthcheck"]["test"][1:]
        probe[0] = str(Path(sys.executable).with_name(probe[0]))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")} | {
            "MLOPS_STATE_DIR": str(settings.state)
        }
        ok = subprocess.run(probe, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert ok.returncode == 0, ok.stdout + ok.stderr

        # The challenger starts failing: the next analysis aborts it and the registry rejects it.
        serve(engine, "challenger", "2", n, errors=n // 2)
        wait_for(lambda: store.rollout().status == "aborted", "the abort")
        # The decision is committed first, then carried out: the registry follows a moment later.
        wait_for(lambda: {v.version: v.status for v in list_versions(settings)}["2"] == "rejected", "the rejection")
        assert store.routing().canary_weight == 0.0
        # ... and both stay up, idle, after the rollout finished.
        after = [c.ticks() for c in controllers]
        wait_for(lambda: all(c.ticks() >= t + 3 for c, t in zip(controllers, after, strict=True)), "idle ticks")
        assert all(c.proc.poll() is None for c in controllers)

        for c in controllers:
            c.proc.send_signal(signal.SIGTERM)
        for c in controllers:
            assert c.proc.wait(timeout=20) == 0, c.output()
            out = c.output()
            assert "SIGTERM: finishing the current tick, then stopping" in out
            assert "rollout controller stopped after" in out
            assert "Traceback" not in out, out
    finally:
        for c in controllers:
            if c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait(timeout=10)
    aborts = [e for e in store.rollout().history if e.event == "abort"]
    assert len(aborts) == 1
    assert aborts[0].actor == "controller"


def test_a_controller_started_before_any_rollout_waits_then_acts(world: tuple[Any, ...], tmp_path: Path) -> None:
    """Idle-tolerant: started on an empty state it neither exits nor writes; a canary started later is run."""
    settings, params, store, engine = world
    c = start_controller(settings, tmp_path, "early", None)
    try:
        wait_for(lambda: c.ticks() >= 3 or c.proc.poll() is not None, "idle ticks")
        assert c.proc.poll() is None, c.output()
        assert store.change_token().rollout == 0, "idle ticks write nothing"
        begin_rollout(settings, params, store)  # as the retraining flow or the admin API would
        serve(engine, "champion", "1", params.rollout.min_requests)
        serve(engine, "challenger", "2", params.rollout.min_requests, errors=params.rollout.min_requests)
        wait_for(lambda: store.rollout().status == "aborted", "the abort of the canary started later")
        c.proc.send_signal(signal.SIGINT)  # Ctrl-C in a terminal: the same clean stop
        assert c.proc.wait(timeout=20) == 0, c.output()
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait(timeout=10)
    assert "no rollout in progress (status idle); waiting for a rollout" in c.output()
