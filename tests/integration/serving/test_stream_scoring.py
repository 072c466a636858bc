"""Streaming inference on a real broker: a redis-server on loopback, a real MLflow champion, the real prediction log.

Every message in the log exactly once (the log's request id is the message id), poison in the dead-letter stream
with its reason, a message delivered twice logged once, and a worker killed with SIGKILL mid-stream whose pending
messages a second worker claims after the claim timeout. Each test has its own broker and its own prediction log.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import redis
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from core.params import Params
from core.settings import Settings
from ops.local_servers import free_port
from pipelines.batches import generate_batch
from pipelines.data import ingest
from pipelines.training_steps import run_training
from serving.contract import RequestContract
from serving.metrics import Metrics
from serving.runtime import Runtime
from serving.stream_messages import DEAD_ORIGINAL_ID, DEAD_REASON, PAYLOAD, MessageReader
from serving.stream_producer import feature_payloads, poison_payloads, produce
from serving.stream_worker import StreamConfig, StreamMetrics, StreamWorker, dead_stream, serve_stream
from tests.integration.serving.stream_helpers import sample, scrape, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
DEADLINE_S = 120.0


@pytest.fixture(scope="module")
def champion(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], params: Params
) -> tuple[Settings, pd.DataFrame]:
    """A registry with a champion, and the raw data the events are drawn from."""
    root = tmp_path_factory.mktemp("stream")
    settings = make_settings(root / "state")
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    assert run_training(settings, params, data).status == "registered"
    return settings, pd.read_csv(data)


@pytest.fixture
def settings(champion: tuple[Settings, pd.DataFrame], redis_url: str, tmp_path: Path) -> Settings:
    """The champion's registry, this test's broker and a prediction log of its own; claims after 1 s."""
    updates = {
        "redis_url": redis_url,
        "stream_claim_idle_s": 1.0,
        "prediction_log_url": f"sqlite:///{tmp_path / 'predictions.db'}",
    }
    return champion[0].model_copy(update=updates)


@pytest.fixture
def broker(settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=30)
    yield client
    client.close()


def events(params: Params, raw: pd.DataFrame, n: int, seed: int = 1) -> list[bytes]:
    frame = generate_batch("clean", raw, params, rows=n, seed=seed, unique_rows=False)
    return feature_payloads(frame, list(params.dataset.features))


def logged_ids(settings: Settings) -> list[str]:
    """Every request id in the prediction log (primary key: a duplicate would be a failed insert, not a row)."""
    engine = sa.create_engine(settings.prediction_log_uri)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("predictions"):
                return []
            return list(conn.scalars(sa.text("SELECT request_id FROM predictions")))
    finally:
        engine.dispose()


def group_state(client: redis.Redis, settings: Settings) -> dict[str, int]:
    (info,) = [g for g in client.xinfo_groups(settings.stream_name) if g["name"] == settings.stream_group.encode()]
    return {"pending": int(info["pending"]), "lag": int(info["lag"])}


def victims_pending(client: redis.Redis, settings: Settings) -> int:
    consumers = client.xinfo_consumers(settings.stream_name, settings.stream_group)
    return sum(int(c["pending"]) for c in consumers if c["name"] == b"victim")


def clean_ids(client: redis.Redis, settings: Settings) -> set[str]:
    """The ids of the stream's entries that are not in the dead-letter stream."""
    dead = {f[DEAD_ORIGINAL_ID].decode() for _, f in client.xrange(dead_stream(settings.stream_name))}
    return {mid.decode() for mid, _ in client.xrange(settings.stream_name)} - dead


def test_every_message_is_logged_once_and_poison_is_dead_lettered_without_blocking_the_group(
    settings: Settings, broker: redis.Redis, champion: tuple[Settings, pd.DataFrame], params: Params
) -> None:
    produce(
        broker,
        settings.stream_name,
        events(params, champion[1], 120) + poison_payloads(6, RequestContract.from_dataset(params.dataset)),
    )
    port, stop = free_port(), threading.Event()
    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(serve_stream(settings, params, "w1", metrics_port=port, stop=stop)), daemon=True
    )
    worker.start()
    try:

        def drained() -> bool:
            try:
                text = scrape(port)
            except OSError:  # the metrics server is not up yet
                return False
            done = sample(text, 'mlops_stream_messages_total{outcome="scored"}') == 120
            return done and sample(text, "mlops_stream_lag_messages") == 0

        wait_for(drained, "the worker scoring all 120 events")
        text = scrape(port)
    finally:
        stop.set()
        worker.join(timeout=DEADLINE_S)
    assert not worker.is_alive()
    assert sample(text, 'mlops_stream_messages_total{outcome="dead_lettered"}') == 6  # poison did not block the rest
    assert sample(text, 'mlops_stream_messages_total{outcome="claimed"}') == 0
    assert sample(text, "mlops_stream_pending_messages") == 0
    assert sample(text, "mlops_stream_processing_seconds_count") == 126
    assert 'mlops_predictions_total{arm="champion"' in text  # the service's own series, from the same runtime
    ids = logged_ids(settings)
    assert len(ids) == 120
    assert sorted(ids) == sorted(clean_ids(broker, settings))  # each clean message once, under its message id
    assert result == [126]
    assert group_state(broker, settings) == {"pending": 0, "lag": 0}
    dead = broker.xrange(dead_stream(settings.stream_name))
    assert len(dead) == 6
    reasons = {fields[DEAD_REASON].decode() for _, fields in dead}
    assert any("not JSON" in r for r in reasons), reasons
    assert any(r == "petal_width: Field required" for r in reasons), reasons
    assert any(r.startswith("sepal_length: Input should be less than or equal to 9") for r in reasons), reasons
    originals = {fields[DEAD_ORIGINAL_ID].decode(): fields[PAYLOAD] for _, fields in dead}
    for mid, original in originals.items():  # the original payload, byte for byte
        assert broker.xrange(settings.stream_name, mid, mid)[0][1][PAYLOAD] == original
    assert not set(originals) & set(ids)


def test_a_message_delivered_again_after_a_crash_before_its_ack_is_logged_once(
    settings: Settings,
    broker: redis.Redis,
    champion: tuple[Settings, pd.DataFrame],
    params: Params,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    produce(broker, settings.stream_name, events(params, champion[1], 30, seed=2))
    runtime = Runtime(settings, params, Metrics())
    runtime.start()
    try:
        reader = MessageReader(RequestContract.from_dataset(params.dataset))
        registries: dict[str, CollectorRegistry] = {}

        def worker(name: str) -> StreamWorker:
            config = StreamConfig(settings.stream_name, settings.stream_group, name, settings.stream_claim_idle_s)
            registries[name] = CollectorRegistry()
            return StreamWorker(broker, runtime, reader, config, StreamMetrics(registries[name]))

        first = worker("crashes-before-ack")
        with monkeypatch.context() as patch:  # the log write happens, the ack does not: a crash in between
            patch.setattr("serving.stream_worker.may_ack", lambda *_: False)
            first.ensure_group()
            assert first.handle(first.read(30, ">"))  # all 30 stay pending
        assert len(logged_ids(settings)) == 30
        assert group_state(broker, settings)["pending"] == 30
        second = worker("rescuer")
        assert second.run(max_messages=30) == 30  # claims them once idle > 1 s, scores them again
    finally:
        runtime.stop()
    claimed = registries["rescuer"].get_sample_value("mlops_stream_messages_total", {"outcome": "claimed"})
    assert claimed == 30
    ids = logged_ids(settings)
    assert sorted(ids) == sorted(clean_ids(broker, settings))  # 30 rows: the second write of each was a no-op
    assert group_state(broker, settings) == {"pending": 0, "lag": 0}


def test_a_worker_killed_mid_stream_loses_nothing_a_second_worker_claims_its_messages(
    settings: Settings, broker: redis.Redis, champion: tuple[Settings, pd.DataFrame], params: Params, tmp_path: Path
) -> None:
    total = 20_000
    produce(broker, settings.stream_name, events(params, champion[1], total, seed=3))
    env = {
        **os.environ,
        "MLOPS_STATE_DIR": str(settings.state),
        "MLOPS_PROJECT_DIR": str(REPO),
        "MLOPS_REDIS_URL": settings.redis_url,
        "MLOPS_PREDICTION_LOG_URL": settings.prediction_log_uri,
        "MLOPS_STREAM_CLAIM_IDLE_S": "1",
        "MLOPS_STARTUP_MODEL_WAIT_S": "120",
    }
    cli = str(Path(sys.executable).with_name("mlops-lab"))
    victim = subprocess.Popen(
        [cli, "stream-score", "--consumer", "victim"], env=env, cwd=REPO, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def frozen_with_messages_in_hand() -> bool:
        """Freeze the victim (SIGSTOP); keep it frozen once it has logged rows and holds unacked messages."""
        assert victim.poll() is None, "the victim exited before it could be killed"
        if not logged_ids(settings):
            return False
        os.killpg(victim.pid, signal.SIGSTOP)
        if victims_pending(broker, settings) > 0:
            return True
        os.killpg(victim.pid, signal.SIGCONT)  # between an ack and its next read: let it go on a little
        return False

    try:
        wait_for(frozen_with_messages_in_hand, "the victim holding unacked messages after its first logged rows")
    finally:
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
    at_kill = len(logged_ids(settings))
    state = group_state(broker, settings)
    assert 0 < at_kill < total, f"{at_kill} of {total} rows logged at the kill"
    assert victims_pending(broker, settings) > 0
    left = state["pending"] + state["lag"]  # delivered and unacked, plus never delivered
    assert 0 < left <= total - at_kill + state["pending"]

    port = free_port()
    rescuer = subprocess.run(
        [cli, "stream-score", "--consumer", "rescuer", "--max-messages", str(left), "--metrics-port", str(port)],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=DEADLINE_S,
    )  # fmt: skip
    assert rescuer.returncode == 0, rescuer.stdout + rescuer.stderr
    assert f"{left} messages finished" in rescuer.stdout
    ids = logged_ids(settings)
    assert len(ids) == total
    assert set(ids) == clean_ids(broker, settings)  # every message once
    assert group_state(broker, settings) == {"pending": 0, "lag": 0}
    assert victims_pending(broker, settings) == 0  # what it held was claimed, scored and acked by the rescuer


def test_sigterm_finishes_the_messages_in_hand_flushes_the_log_and_exits_0(
    settings: Settings, broker: redis.Redis, champion: tuple[Settings, pd.DataFrame], params: Params
) -> None:
    total = 20_000
    produce(broker, settings.stream_name, events(params, champion[1], total, seed=4))
    env = {
        **os.environ,
        "MLOPS_STATE_DIR": str(settings.state),
        "MLOPS_PROJECT_DIR": str(REPO),
        "MLOPS_REDIS_URL": settings.redis_url,
        "MLOPS_PREDICTION_LOG_URL": settings.prediction_log_uri,
    }
    cli = str(Path(sys.executable).with_name("mlops-lab"))
    worker = subprocess.Popen(
        [cli, "stream-score", "--consumer", "graceful"], env=env, cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: worker.poll() is not None or len(logged_ids(settings)) > 0, "the worker's first logged rows")
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, out
    finished = int(re.search(r"(\d+) messages finished", out).group(1))  # type: ignore[union-attr]
    state = group_state(broker, settings)
    assert state["pending"] == 0  # nothing left in hand
    assert len(logged_ids(settings)) == finished  # every acked message's prediction is committed
    assert finished + state["lag"] == total
