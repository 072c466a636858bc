"""The stream-scoring worker: a consumer in a Redis Streams consumer group, scoring with the service's own runtime.

Concept: streaming inference (C63), next to online (``/v1/predict``: a client waits for the answer) and batch
(``batch-score``: a file, offline). Feature events arrive on a stream; a group of workers shares them (each entry
goes to one worker); nobody waits for an answer, the prediction goes to the prediction log.

A worker is a `serving.runtime.Runtime` -- the same model cache with hot reload, routing and bandit state from the
shared store, and prediction log as the HTTP service -- fed by ``XREADGROUP`` instead of HTTP. Per read of up to
``batch`` entries it

1. reads each entry (`serving.stream_messages.MessageReader`: the HTTP contract) into an event or poison;
2. routes and scores the events (`Predictor.serve_many`: each keeps its own routing, one model call per model) and
   hands each prediction to the log under the *message id*;
3. flushes the log (the rows are committed); with real-time features on, updates the rolling windows of the
   scored events that name a specimen and pushes their aggregates to the online store
   (`serving.stream_features`); then in one Redis transaction writes the dead letters and acks;
4. hands each message it acked as scored to the observer, if it has one (the anomaly detector,
   `serving.stream_observer`), and exports its verdict.

So an entry is acked only once its prediction is durable, and a crash anywhere before the ack leaves it pending:
it is delivered again (to this consumer's pending read, or to another worker that ``XAUTOCLAIM``s it after
``claim_idle_s``), scored again, and the log's ``ON CONFLICT DO NOTHING`` on the message id keeps one row. That is
at-least-once delivery made exactly-once in the log by an idempotent write. A crash between the dead letter and
its ack cannot happen: they are one ``MULTI``/``EXEC``. No champion yet, a full log or a log that cannot commit
leaves the entries pending; the worker reads its own pending entries again after a pause.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from serving.metrics import LATENCY_BUCKETS
from serving.predict import Request, Served
from serving.stream_messages import Event, MessageReader, Outcome, Poison, claim_due, dead_letter, may_ack, outcome_of

if TYPE_CHECKING:
    import redis

    from core.params import Params
    from core.settings import Settings
    from serving.runtime import Runtime
    from serving.stream_features import RollingFeatures
    from serving.stream_observer import ScoredObserver

log = logging.getLogger(__name__)
Entry = tuple[bytes, dict[bytes, bytes] | None]  # (message id, fields); fields None: deleted from the stream
OUTCOMES = ("scored", "dead_lettered", "claimed")
FLUSH_TIMEOUT_S = 10.0
RETRY_PAUSE_S = 1.0


def dead_stream(stream: str) -> str:
    """The dead-letter stream of ``stream``."""
    return f"{stream}:dead"


class StreamMetrics:
    """The worker's series, in the runtime's registry (beside its prediction and model series)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "mlops_stream_messages", "Stream messages by outcome (claimed: taken over from an idle consumer, "
            "and then also scored or dead-lettered)", ["outcome"], registry=registry,
        )  # fmt: skip
        for outcome in OUTCOMES:
            self.messages.labels(outcome)  # every outcome on /metrics from the start, at 0
        self.lag = Gauge(
            "mlops_stream_lag_messages", "Entries not yet delivered to the consumer group (XINFO GROUPS lag)",
            registry=registry,
        )  # fmt: skip
        self.pending = Gauge(
            "mlops_stream_pending_messages", "Entries delivered to the group and not yet acknowledged",
            registry=registry,
        )  # fmt: skip
        self.processing = Histogram(
            "mlops_stream_processing_seconds", "From a message's read to its ack (its batch's flush included)",
            buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.anomaly_score = Gauge(
            "mlops_stream_anomaly_score", "Robust z-score of the latest scored message's novelty (the anomaly "
            "detector fed per message; 0 until it has seen one)", registry=registry,
        )  # fmt: skip
        self.anomalies = Counter(
            "mlops_stream_anomalies", "Scored messages the anomaly detector flagged", registry=registry
        )


@dataclass(frozen=True)
class StreamConfig:
    """Where the worker reads and who it is in the group."""

    stream: str
    group: str
    consumer: str
    claim_idle_s: float
    batch: int = 64  # entries per read: one flush and one transaction for all of them
    block_ms: int = 1000  # a read waits at most this long, so a stop or a due claim is never late by more


class StreamWorker:
    """One consumer of the group; `run` until stopped (or ``max_messages`` finished)."""

    def __init__(
        self,
        client: redis.Redis,
        runtime: Runtime,
        reader: MessageReader,
        config: StreamConfig,
        metrics: StreamMetrics,
        stop: threading.Event | None = None,
        *,
        features: RollingFeatures | None = None,
        observer: ScoredObserver | None = None,
    ) -> None:
        self.client, self.runtime, self.reader, self.config, self.metrics = client, runtime, reader, config, metrics
        self.stop = stop or threading.Event()
        self.features, self.observer = features, observer
        self.finished = 0  # messages acked by this worker (scored or dead-lettered)

    def ensure_group(self) -> None:
        """Create the stream and the group if they do not exist; the group starts at the stream's first entry."""
        import redis

        try:
            self.client.xgroup_create(self.config.stream, self.config.group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as err:
            if "BUSYGROUP" not in str(err):  # the group exists: another worker made it
                raise

    def run(self, max_messages: int | None = None) -> int:
        """Read, score, log, ack until `stop` is set (or ``max_messages`` are finished); returns how many were."""
        import redis

        self.ensure_group()
        own_pending = True  # first this consumer's own unacked entries (a restart under the same name)
        last_claim: float | None = None
        while not self.stop.is_set() and (max_messages is None or self.finished < max_messages):
            room = self.config.batch if max_messages is None else min(self.config.batch, max_messages - self.finished)
            try:
                if claim_due(time.monotonic(), last_claim, self.config.claim_idle_s):
                    last_claim = time.monotonic()
                    claimed = self.claim(room)
                    if claimed:
                        own_pending |= self.handle(claimed)
                        continue
                entries = self.read(room, "0" if own_pending else ">")
                if own_pending and not entries:
                    own_pending = False
                    continue
                if entries and self.handle(entries):
                    own_pending = True  # some stay pending: read them again after a pause
                    self.stop.wait(RETRY_PAUSE_S)
                self.update_lag()
            except redis.exceptions.ConnectionError as err:  # the broker is away: nothing acked, retry later
                log.warning("stream broker unreachable, retrying in %.0f s: %s", RETRY_PAUSE_S, err)
                own_pending = True
                self.stop.wait(RETRY_PAUSE_S)
        return self.finished

    def read(self, count: int, start: str) -> list[Entry]:
        """New entries (``>``, waiting at most ``block_ms``) or this consumer's pending ones (``0``)."""
        block = self.config.block_ms if start == ">" else None
        answer: Any = self.client.xreadgroup(
            self.config.group, self.config.consumer, {self.config.stream: start}, count=count, block=block
        )
        return list(answer[0][1]) if answer else []

    def claim(self, count: int) -> list[Entry]:
        """Take over entries another consumer left pending longer than the claim timeout (it died, presumably)."""
        idle_ms = int(self.config.claim_idle_s * 1000)
        answer: Any = self.client.xautoclaim(
            self.config.stream, self.config.group, self.config.consumer, idle_ms, start_id="0-0", count=count
        )
        claimed = list(answer[1])
        if claimed:
            self.metrics.messages.labels("claimed").inc(len(claimed))
            log.warning("claimed %d messages idle for more than %g s", len(claimed), self.config.claim_idle_s)
        return claimed

    def handle(self, entries: Sequence[Entry]) -> bool:
        """Score, log, flush, then dead-letter and ack in one transaction. True if some entries stay pending."""
        start = time.perf_counter()
        parsed = [self.reader.read(mid.decode("ascii"), fields) for mid, fields in entries]
        events = [p for p in parsed if isinstance(p, Event)]
        decided: dict[str, tuple[Outcome, str | None]] = {
            p.message_id: (Outcome.DEAD_LETTERED, p.reason) for p in parsed if isinstance(p, Poison)
        }
        served: dict[str, Served] = {}
        if events:
            decided.update(self._score(events, start, served))
        durable = self.runtime.log.flush(FLUSH_TIMEOUT_S) if events and self.runtime.log else True
        if not durable:
            log.warning("prediction log did not commit within %g s; %d messages stay pending", FLUSH_TIMEOUT_S,
                        len(events))  # fmt: skip
        scored = [e for e in events if decided[e.message_id][0] is Outcome.SCORED]
        if self.features is not None and durable:  # before the ack: a crash here redelivers, and replays are no-ops
            self.features.apply(scored)
        fields = {mid.decode("ascii"): f for mid, f in entries}
        dead = dead_stream(self.config.stream)
        acked: list[str] = []
        with self.client.pipeline(transaction=True) as tx:  # MULTI ... EXEC: a dead letter never without its ack
            for message_id, (outcome, reason) in decided.items():
                if not may_ack(outcome, durable):
                    continue
                if outcome is Outcome.DEAD_LETTERED:
                    tx.xadd(dead, dead_letter(message_id, fields[message_id], reason or "unknown"))  # type: ignore[arg-type]
                    log.warning("message %s dead-lettered: %s", message_id, reason)
                acked.append(message_id)
            if acked:
                tx.xack(self.config.stream, self.config.group, *acked)
                tx.execute()
        elapsed = time.perf_counter() - start
        for message_id in acked:
            self.metrics.messages.labels(decided[message_id][0].value).inc()
            self.metrics.processing.observe(elapsed)
        self.finished += len(acked)
        if self.observer is not None:
            done = set(acked)
            self._observe([e for e in scored if e.message_id in done], served)
        return len(acked) < len(entries)

    def _observe(self, events: list[Event], served: dict[str, Served]) -> None:
        """Feed the observer each acked, scored message in stream order; export its verdicts."""
        assert self.observer is not None
        for event in events:
            alarm = self.observer.observe(event, served[event.message_id])
            self.metrics.anomaly_score.set(alarm.score)
            if alarm.anomaly:
                self.metrics.anomalies.inc()
                log.warning("message %s is an anomaly (z=%+.1f)", event.message_id, alarm.score)

    def _score(
        self, events: list[Event], start: float, served: dict[str, Served]
    ) -> dict[str, tuple[Outcome, str | None]]:
        """Route and score the events as the HTTP service would; hand each prediction to the log.

        Each prediction is also put in ``served`` by message id (for the observer).
        """
        predictor = self.runtime.predictor()
        requests = [Request(e.values, e.message_id, start=start, user_id=e.user_id, groups=e.groups) for e in events]
        decided: dict[str, tuple[Outcome, str | None]] = {}
        for event, answer in zip(events, predictor.serve_many(requests), strict=True):
            outcome, reason = outcome_of(answer)
            if isinstance(answer, Served):
                served[event.message_id] = answer
                if not predictor.record(answer, event.values):  # the log is full: not logged, so not acked
                    outcome = Outcome.RETRY
                elif answer.decision.shadow_alias is not None:
                    self.runtime.after_response(answer, event.values)
            if outcome is Outcome.RETRY:
                log.info("message %s (request %s) stays pending: %s", event.message_id, event.request_id, answer)
            decided[event.message_id] = (outcome, reason)
        return decided

    def update_lag(self) -> None:
        """Lag (entries the group has not been given yet) and pending (given, not acked) from XINFO GROUPS."""
        for group in self.client.xinfo_groups(self.config.stream):
            name = group["name"]
            if (name.decode() if isinstance(name, bytes) else name) != self.config.group:
                continue
            lag = group.get("lag")
            self.metrics.lag.set(float("nan") if lag is None else lag)  # None: Redis cannot tell (entries deleted)
            self.metrics.pending.set(group["pending"])


def serve_stream(
    settings: Settings,
    params: Params,
    consumer: str,
    *,
    max_messages: int | None = None,
    metrics_port: int = 0,
    metrics_host: str = "127.0.0.1",
    stop: threading.Event | None = None,
    observer: ScoredObserver | None = None,
) -> int:
    """Start a runtime (models, routing, log) and a worker on ``settings.redis_url``; run until stopped.

    ``metrics_port``: serve /metrics at this port (0: off), on ``metrics_host`` (loopback unless a container's
    Prometheus must reach it). ``settings.stream_features``: keep rolling features and push them to the feature
    store at ``settings.feature_store_dir`` (its definitions applied). ``observer``: fed each scored message
    (`serving.stream_observer`). The prediction log is flushed and closed on the way out, whatever ends the run.
    Returns how many messages this worker finished.
    """
    import redis
    from prometheus_client import start_http_server

    from serving.contract import RequestContract
    from serving.metrics import Metrics
    from serving.runtime import Runtime

    runtime = Runtime(settings, params, Metrics())
    metrics = StreamMetrics(runtime.metrics.registry)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=30, socket_connect_timeout=10)
    config = StreamConfig(settings.stream_name, settings.stream_group, consumer, settings.stream_claim_idle_s)
    reader = MessageReader(RequestContract.from_dataset(params.dataset))
    features = rolling_features(settings, params, client) if settings.stream_features else None
    server = None
    runtime.start()
    try:
        if metrics_port:
            server, _thread = start_http_server(metrics_port, addr=metrics_host, registry=runtime.metrics.registry)
        worker = StreamWorker(client, runtime, reader, config, metrics, stop, features=features, observer=observer)
        return worker.run(max_messages)
    finally:
        if server is not None:
            server.shutdown()
        runtime.stop()  # flushes every prediction handed to the log
        client.close()


def rolling_features(settings: Settings, params: Params, client: redis.Redis) -> RollingFeatures:
    """The real-time feature writer on the feature store's folder; its rolling view must be applied there."""
    from feast.errors import FeatureViewNotFoundException

    from pipelines.feature_store import ROLLING_VIEW, FeatureRepo, open_store
    from serving.stream_features import RollingFeatures

    repo = FeatureRepo(settings.feature_store_dir)
    store = open_store(repo)
    try:
        store.get_feature_view(ROLLING_VIEW)
    except FeatureViewNotFoundException:
        raise RuntimeError(
            f"MLOPS_STREAM_FEATURES is on but the feature store at {repo.root} has no {ROLLING_VIEW!r} view; "
            "run `mlops-lab features history` (it applies the definitions) or set MLOPS_STREAM_FEATURES=false"
        ) from None
    return RollingFeatures(client, store, settings.stream_name, params.dataset.feature_names)
