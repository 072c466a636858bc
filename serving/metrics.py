"""Prometheus metrics of the serving API: traffic, latency, predictions per version and arm.

Concept: operational monitoring of a model service (C18, C21). A canary analysis, an alert or a
Grafana panel needs the same few series every model server exposes: requests by route, method and
status, a latency histogram, predictions by model version / arm / class (a sudden class shift is
often the first visible symptom of drift), errors, and which versions are loaded right now. Names
follow one scheme (`serving.metric_names`): the usual ``http_requests_total`` and
``http_request_duration_seconds`` for HTTP, ``mlops_`` and a base unit for everything else.

Each app gets its *own* ``CollectorRegistry``: the global default registry would raise
"Duplicated timeseries" as soon as a second app is created in one process (tests, reloads), and
it would mix in unrelated collectors. Request metrics come from a pure ASGI middleware (cheaper
than ``BaseHTTPMiddleware``) labelled with the route *template* (``/v2/models/{name}/infer``), never
the raw path, and with the method only when it is a standard one (else ``other``), so a client cannot
explode the label cardinality with made-up URLs or methods. With several
uvicorn workers each process has its own counters; Prometheus scrapes per process (or use the
client's multiprocess mode behind a single exporter).

The same registry also carries `serving.monitor_metrics.MonitorCollector`: the monitoring findings
and the rollout state of the shared database, re-exported as gauges for alert rules and dashboards
(monitoring/prometheus/alerts.yml, monitoring/grafana/). docs/metrics.md lists every series.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from serving.access_log import utc_timestamp
from serving.metric_names import HTTP_METHODS, OTHER_METHOD
from serving.monitor_metrics import MonitorCollector

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from prometheus_client.metrics_core import Metric
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from serving.access_log import AccessLog
    from serving.log_schema import LogStats
    from serving.model_cache import LoadedModel

access_log = logging.getLogger("serving.access")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
MODEL_CALL_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 10_000)


CLIENT_CLOSED_REQUEST = 499
LOG_OUTCOMES = ("enqueued", "written", "refused", "failed", "dropped")


class LogCollector:
    """The prediction log's own counters at scrape time (in-memory, no database read): is nothing lost?

    ``mlops_prediction_log_rows_total{outcome}``: rows accepted (enqueued), committed (written), refused with
    a 503 (refused), rejected by the database (failed) and given up at shutdown (dropped);
    ``mlops_prediction_log_queued_rows``: accepted, not yet committed; ``mlops_prediction_log_write_ok``: 0 while writes
    fail (a full disk, a database that is down), when a backlog is building up that shutdown may drop.
    """

    def __init__(self) -> None:
        self._stats: Callable[[], LogStats] | None = None

    def attach(self, stats: Callable[[], LogStats]) -> None:
        self._stats = stats

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self._stats is None:
            return
        stats = self._stats()
        rows = CounterMetricFamily("mlops_prediction_log_rows", "Prediction log rows by outcome", labels=["outcome"])
        for outcome in LOG_OUTCOMES:
            rows.add_metric([outcome], getattr(stats, outcome))
        yield rows
        yield GaugeMetricFamily(
            "mlops_prediction_log_queued_rows", "Rows accepted, not yet committed", value=stats.queued
        )
        yield GaugeMetricFamily(
            "mlops_prediction_log_write_ok",
            "0 while the prediction log's writes fail",
            value=float(stats.write_error is None),
        )


class Metrics:
    """All series of one app, registered in a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("http_requests", "HTTP requests", ["route", "method", "status"], registry=r)
        self.latency = Histogram(
            "http_request_duration_seconds", "HTTP request duration", ["route", "method"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.predictions = Counter(
            "mlops_predictions", "Rows predicted", ["model_version", "arm", "predicted_class"], registry=r
        )
        self.prediction_errors = Counter(
            "mlops_prediction_errors", "Rows the model failed to score", ["arm"], registry=r
        )
        self.shadow_agreement = Counter(
            "mlops_shadow_predictions", "Shadow rows scored, by agreement with the served answer", ["agreed"],
            registry=r,
        )  # fmt: skip
        self.shadow_model_time = Histogram(
            "mlops_shadow_model_duration_seconds",
            "Shadow model time per mirrored request, after the response (not user-facing)",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.reloads = Counter("mlops_model_reloads", "Model snapshot swaps after an alias moved", registry=r)
        self.model_call_rows = Histogram(
            "mlops_model_call_rows", "Rows scored per model call (one request, or a micro-batch of several)",
            buckets=MODEL_CALL_ROW_BUCKETS, registry=r,
        )  # fmt: skip
        self.model_info = Gauge(
            "mlops_model_info",
            "Loaded model per alias (value 1); runtime: onnx or sklearn",
            ["alias", "version", "runtime"],
            registry=r,
        )
        self.monitor = MonitorCollector()  # findings + rollout gauges; the runtime attaches the state store
        r.register(self.monitor)
        self.log = LogCollector()  # the runtime attaches its prediction log
        r.register(self.log)
        self._predicted: dict[tuple[str, str, str], Any] = {}
        self._per_request: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def count_predictions(self, version: str, arm: str, labels: Sequence[str]) -> None:
        if len(labels) == 1:  # one row, the common request: no Counter to build
            self._prediction_child(version, arm, labels[0]).inc()
            return
        for label, n in Tally(labels).items():
            self._prediction_child(version, arm, label).inc(n)

    def _prediction_child(self, version: str, arm: str, label: str) -> Any:
        """The labelled child, cached: ``labels()`` takes a lock and builds a key on every call.

        Safe because these series are never removed; the key space is versions x arms x classes.
        """
        key = (version, arm, label)
        child = self._predicted.get(key)
        if child is None:
            child = self._predicted[key] = self.predictions.labels(version, arm, label)
        return child

    def request_children(self, route: str, method: str, status: int) -> tuple[Any, Any]:
        """The (request counter, latency histogram) children of a route, method and status, cached like above.

        A method outside `HTTP_METHODS` is counted as ``other``: a client may send any token as a method,
        and every distinct label value is a new series kept for the life of the process.
        """
        key = (route, method, status)
        children = self._per_request.get(key)
        if children is None:
            label = method if method in HTTP_METHODS else OTHER_METHOD
            children = (self.requests.labels(route, label, str(status)), self.latency.labels(route, label))
            if method in HTTP_METHODS:  # an unknown method is not cached either: the cache must stay bounded too
                self._per_request[key] = children
        return children

    def observe_batch(self, rows: int) -> None:
        """One model call scored ``rows`` rows (a request alone, or a micro-batch of requests)."""
        self.model_call_rows.observe(rows)

    def count_shadow(self, served: Sequence[str], shadow: Sequence[str]) -> None:
        agreed = sum(a == b for a, b in zip(served, shadow, strict=True))
        self.shadow_agreement.labels("true").inc(agreed)
        self.shadow_agreement.labels("false").inc(len(shadow) - agreed)

    def models_loaded(self, snapshot: Mapping[str, LoadedModel], reloaded: bool) -> None:
        """Publish the loaded versions; count a reload when the snapshot was swapped."""
        if reloaded:
            self.reloads.inc()
        self.model_info.clear()
        for alias, loaded in snapshot.items():
            self.model_info.labels(alias, loaded.version, loaded.runtime).set(1)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type, for GET /metrics."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every HTTP request; writes one structured JSON access-log line per request.

    Handlers can add fields to the log line (request id, arm, model version) through
    ``request.state.access`` -- a dict in the ASGI scope's state. While ``access`` (the app's stdout
    writer) runs, the line goes straight to it; otherwise to the ``serving.access`` logger, for
    whoever configured a handler on it (tests, a custom logging setup).
    """

    def __init__(
        self, app: ASGIApp, metrics: Metrics, access: AccessLog | None = None, routes: Sequence[Any] = ()
    ) -> None:
        self.app, self.metrics, self.access = app, metrics, access
        self.routes = routes  # the app's routes (the live list): templates for answers given before routing

    def endpoint(self, scope: Scope) -> str:
        """The route template of the request, also for an answer given before routing (413, 429, 408)."""
        route = scope.get("route")
        if route is None:  # an edge middleware answered first: match the path as the router would have
            route = next((r for r in self.routes if r.matches(scope)[0] is not Match.NONE), None)
        return getattr(route, "path", None) or "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        answered: float | None = None  # when the last byte of the response was handed to the server
        status = 500  # if the app raises before answering, the server error middleware answers 500

        async def receive_wrapper() -> Message:
            nonlocal start
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                start = time.perf_counter()  # latency is ours from the body's end, not the client's upload
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = time.perf_counter()  # the user has the answer; work after this (shadow) is not theirs

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except ClientDisconnect:
            # The client hung up before its body arrived: nobody to answer, nothing of ours failed. Counted
            # as 499 (nginx's "client closed request"), never as a 5xx a canary analysis or an alert reads.
            status = CLIENT_CLOSED_REQUEST
        finally:
            elapsed = (answered if answered is not None else time.perf_counter()) - start
            endpoint = self.endpoint(scope)
            counter, histogram = self.metrics.request_children(endpoint, scope["method"], status)
            counter.inc()
            histogram.observe(elapsed)
            writer = self.access if self.access is not None and self.access.running else None
            if writer is not None or access_log.isEnabledFor(logging.INFO):
                line = {
                    "ts": utc_timestamp(),
                    "level": "error" if status >= 500 else "warning" if status >= 400 else "info",
                    "method": scope["method"],
                    "path": endpoint,
                    "status": status,
                    "latency_ms": round(elapsed * 1e3, 3),  # to the microsecond
                }
                if extra := scope.get("state", {}).get("access"):
                    line.update(extra)  # same keys and order as {**line, **extra}, without a second dict
                text = orjson.dumps(line, default=str).decode()
                if writer is not None:
                    writer.write(text)  # a deque append; the writer thread does the I/O
                else:
                    access_log.info(text)
