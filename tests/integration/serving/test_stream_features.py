"""Real-time features and anomaly detection on a real stream: redis-server, a real Feast store, a real champion.

The online store's rolling features equal a batch recomputation over the same events (the offline/online
consistency answer), after a worker restart too; a message delivered again after a crash before its ack changes
nothing; a stream with a few events no class explains raises the anomaly counter on a real /metrics scrape, a
clean one does not.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pytest
import redis
from prometheus_client import CollectorRegistry

from core.params import Params
from core.settings import Settings
from ops.local_servers import free_port
from pipelines.batches import generate_batch
from pipelines.data import ingest
from pipelines.feature_history import generate_history
from pipelines.feature_store import FeatureRepo, apply, open_store, write_history
from pipelines.rolling_features import COUNT, EVENT_MS, MESSAGE_ID, WINDOW, batch_rolling
from pipelines.rolling_store import online_rolling
from pipelines.training_steps import run_training
from serving.contract import RequestContract
from serving.metrics import Metrics
from serving.runtime import Runtime
from serving.stream_messages import PAYLOAD, MessageReader
from serving.stream_worker import StreamConfig, StreamMetrics, StreamWorker, rolling_features, serve_stream
from tests.integration.serving.stream_helpers import sample, scrape, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DEADLINE_S = 120.0
START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def champion(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings], params: Params
) -> tuple[Settings, pd.DataFrame]:
    """A registry with a champion, the raw data, and a feature store with the definitions applied."""
    root = tmp_path_factory.mktemp("stream-features")
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    settings = make_settings(root / "state", feature_repo=root / "feature_repo")
    assert run_training(settings, params, data).status == "registered"
    raw = pd.read_csv(data)
    repo = FeatureRepo(settings.feature_store_dir)
    write_history(repo, generate_history(raw, params.dataset, specimens=20, seed=1))
    apply(repo, params.dataset)
    return settings, raw


@pytest.fixture
def settings(champion: tuple[Settings, pd.DataFrame], redis_url: str, tmp_path: Path) -> Settings:
    updates = {
        "redis_url": redis_url,
        "stream_claim_idle_s": 1.0,
        "stream_features": True,
        "prediction_log_url": f"sqlite:///{tmp_path / 'predictions.db'}",
    }
    return champion[0].model_copy(update=updates)


@pytest.fixture
def broker(settings: Settings) -> redis.Redis:
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=30)
    yield client
    client.close()


def specimen_events(params: Params, raw: pd.DataFrame, specimens: int, per: int, seed: int) -> list[dict]:
    """``per`` measurements of each specimen an hour apart, in a shuffled order (late arrivals), some unnamed."""
    frame = generate_batch("clean", raw, params, rows=specimens * per + 10, seed=seed, unique_rows=False)
    rows = frame[params.dataset.feature_names].astype(float).to_dict("records")
    out = []
    for i, row in enumerate(rows[: specimens * per]):
        sid, k = f"rt-{i % specimens:03d}", i // specimens
        when = START + timedelta(hours=k + 100 * seed)
        out.append({**row, "specimen_id": sid, "event_timestamp": when.isoformat().replace("+00:00", "Z")})
    random.Random(seed).shuffle(out)
    return out + rows[specimens * per :]  # ten events with no specimen: scored, no feature


def send(client: redis.Redis, stream: str, payloads: list[dict]) -> None:
    """XADD in this order (the test decides what is late, not a shuffle)."""
    with client.pipeline(transaction=False) as pipe:
        for obj in payloads:
            pipe.xadd(stream, {PAYLOAD: orjson.dumps(obj)})
        pipe.execute()


def event_log(client: redis.Redis, settings: Settings, params: Params) -> pd.DataFrame:
    """Every event of the stream that names a specimen, with its message id and time: the batch job's input."""
    reader = MessageReader(RequestContract.from_dataset(params.dataset))
    rows = []
    for mid, fields in client.xrange(settings.stream_name):
        event = reader.read(mid.decode(), fields)
        if getattr(event, "entity_id", None) is None:
            continue
        values = dict(zip(params.dataset.feature_names, event.values[0], strict=True))  # type: ignore[union-attr]
        rows.append({"specimen_id": event.entity_id, MESSAGE_ID: event.message_id, EVENT_MS: event.event_ms, **values})  # type: ignore[union-attr]
    return pd.DataFrame(rows)


def online_frame(settings: Settings, params: Params, ids: list[str]) -> pd.DataFrame:
    store = open_store(FeatureRepo(settings.feature_store_dir))  # a fresh client: what a request would read
    got = online_rolling(store, ids, params.dataset.feature_names)
    assert all(v is not None for v in got.values()), got
    return pd.DataFrame([{"specimen_id": sid, **v} for sid, v in got.items() if v is not None])


def assert_online_equals_batch(client: redis.Redis, settings: Settings, params: Params) -> pd.DataFrame:
    batch = batch_rolling(event_log(client, settings, params), "specimen_id", params.dataset.feature_names)
    online = online_frame(settings, params, list(batch["specimen_id"]))
    pd.testing.assert_frame_equal(online, batch, check_dtype=False, rtol=1e-12)
    return online


def test_online_rolling_features_equal_a_batch_recomputation_and_survive_a_worker_restart(
    settings: Settings, broker: redis.Redis, champion: tuple[Settings, pd.DataFrame], params: Params
) -> None:
    first = specimen_events(params, champion[1], specimens=6, per=3, seed=1)
    send(broker, settings.stream_name, first)
    assert serve_stream(settings, params, "w1", max_messages=len(first)) == len(first)
    before = assert_online_equals_batch(broker, settings, params)
    assert set(before[COUNT]) == {3}  # three events each so far

    later = specimen_events(params, champion[1], specimens=6, per=4, seed=2)  # newer times: a full window each
    send(broker, settings.stream_name, later)
    assert serve_stream(settings, params, "w2", max_messages=len(later)) == len(later)  # another process's worker
    after = assert_online_equals_batch(broker, settings, params)
    assert set(after[COUNT]) == {WINDOW}  # 3 + 4 events: the window holds the latest 5
    assert not after.equals(before)  # the next read sees the update


def test_a_message_delivered_again_after_a_crash_before_its_ack_changes_no_feature(
    settings: Settings,
    broker: redis.Redis,
    champion: tuple[Settings, pd.DataFrame],
    params: Params,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payloads = specimen_events(params, champion[1], specimens=4, per=8, seed=3)  # 8 per specimen: 3 trimmed
    send(broker, settings.stream_name, payloads)
    runtime = Runtime(settings, params, Metrics())
    runtime.start()
    try:
        reader = MessageReader(RequestContract.from_dataset(params.dataset))
        features = rolling_features(settings, params, broker)
        registries: dict[str, CollectorRegistry] = {}

        def worker(name: str) -> StreamWorker:
            config = StreamConfig(settings.stream_name, settings.stream_group, name, settings.stream_claim_idle_s)
            registries[name] = CollectorRegistry()
            return StreamWorker(broker, runtime, reader, config, StreamMetrics(registries[name]), features=features)

        first = worker("crashes-before-ack")
        with monkeypatch.context() as patch:  # features written, the ack lost: a crash in between
            patch.setattr("serving.stream_worker.may_ack", lambda *_: False)
            first.ensure_group()
            assert first.handle(first.read(len(payloads), ">"))
        once = assert_online_equals_batch(broker, settings, params)
        windows = features.windows(list(once["specimen_id"]))
        assert worker("rescuer").run(max_messages=len(payloads)) == len(payloads)  # every message again
    finally:
        runtime.stop()
    assert registries["rescuer"].get_sample_value("mlops_stream_messages_total", {"outcome": "claimed"}) == len(
        payloads
    )
    twice = assert_online_equals_batch(broker, settings, params)
    pd.testing.assert_frame_equal(twice, once)  # the redelivered events, trimmed ones too, count once
    assert features.windows(list(once["specimen_id"])) == windows
    assert set(twice[COUNT]) == {WINDOW}


ODD_ROWS = [  # inside the contract's ranges, explained by no species: small sepals with the largest petals
    {"sepal_length": 4.3, "sepal_width": 4.4, "petal_length": 6.9, "petal_width": 2.5},
    {"sepal_length": 7.5, "sepal_width": 2.2, "petal_length": 1.2, "petal_width": 0.2},
    {"sepal_length": 4.5, "sepal_width": 4.0, "petal_length": 6.5, "petal_width": 2.4},
]


@pytest.mark.parametrize("odd", [0, 3])
def test_events_no_class_explains_raise_the_anomaly_counter_on_metrics_and_a_clean_stream_does_not(
    settings: Settings, broker: redis.Redis, champion: tuple[Settings, pd.DataFrame], params: Params, odd: int
) -> None:
    from monitoring.stream_anomaly import StreamAnomalyDetector

    clean = generate_batch("clean", champion[1], params, rows=150, seed=7, unique_rows=False)
    payloads = clean[params.dataset.feature_names].astype(float).to_dict("records")
    for i, row in enumerate(ODD_ROWS[:odd]):
        payloads.insert(40 + 40 * i, row)  # after the detector's warmup, between clean events
    send(broker, settings.stream_name, payloads)
    detector = StreamAnomalyDetector.from_reference(champion[1], params.dataset, params.monitoring.anomaly)
    plain = settings.model_copy(update={"stream_features": False})
    port, stop = free_port(), threading.Event()
    worker = threading.Thread(
        target=lambda: serve_stream(plain, params, "w1", metrics_port=port, stop=stop, observer=detector), daemon=True
    )
    worker.start()
    try:

        def drained() -> bool:
            try:
                text = scrape(port)
            except OSError:
                return False
            return sample(text, 'mlops_stream_messages_total{outcome="scored"}') == len(payloads)

        wait_for(drained, f"the worker scoring all {len(payloads)} events", DEADLINE_S)
        text = scrape(port)
    finally:
        stop.set()
        worker.join(timeout=DEADLINE_S)
    assert not worker.is_alive()
    assert sample(text, "mlops_stream_anomalies_total") == odd
    assert sample(text, "mlops_stream_anomaly_score") is not None
    assert detector.detector.seen == len(payloads)  # fed once per message
