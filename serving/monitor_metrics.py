"""Monitoring findings and rollout state as Prometheus gauges, on every replica's ``/metrics``.

Concept: operational metrics and alerting (C31). Drift checks and the rollout controller run outside
the API and write their answers to the shared database (`core.findings`, the state store). To
alert on them with the same Prometheus rules and Grafana panels as on latency and errors, the API
re-exports that state as gauges: every check's status, score and threshold, the drift share,
per-feature drift scores, online accuracy per model version, and the rollout's status, weight, step
and abort time.

Built as a custom collector over a snapshot that the serving `Poller` refreshes every
``poll_interval_s``, never at scrape time: the request path (and ``/metrics`` is one) never waits on
the database, exactly like the routing state. If the database cannot be read the last snapshot stays
exported, ``mlops_monitor_state_read_ok`` drops to 0 and the failure is logged, so a database outage never
fails a scrape or blanks the dashboards. Every replica reads the same rows, so the series are equal
across replicas (up to one poll interval): rules aggregate them with ``max()``. From ``details`` only
the documented keys are read (data drift ``features``, concept drift ``versions``, anomaly
``metrics``; docs/metrics.md); a missing figure is no series, never a made-up 0.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from core.findings import Finding, latest_findings
from core.redact import redact
from serving.rollout import STATUSES, RolloutState

if TYPE_CHECKING:
    from serving.state_store import StateStore

log = logging.getLogger(__name__)
FINDING_STATUSES = ("ok", "fired", "inconclusive")


@dataclass(frozen=True)
class MonitorState:
    """What the gauges show: the latest finding per check and the persisted rollout."""

    findings: Mapping[str, Finding]
    rollout: RolloutState


def read_monitor_state(store: StateStore) -> MonitorState:
    """One read of the shared database (the same one the checks and the controller write to)."""
    return MonitorState(latest_findings(store.engine), store.rollout())


def _number(value: Any) -> float | None:
    """A finite float, or None for anything that is not a plain number (None, text, bool, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _entries(details: Mapping[str, Any], key: str) -> list[tuple[str, Mapping[str, Any]]]:
    """``details[key]`` as sorted (name, mapping) pairs; anything else there is ignored."""
    raw = details.get(key)
    if not isinstance(raw, Mapping):
        return []
    return sorted((str(name), entry) for name, entry in raw.items() if isinstance(entry, Mapping))


def _timestamp(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return None


def _gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def _add(family: GaugeMetricFamily, labels: Sequence[str], value: Any) -> None:
    """Add a sample only for a real number: a missing figure is no series, never a made-up 0."""
    if (number := _number(value)) is not None:
        family.add_metric(list(labels), number)


def check_families(findings: Mapping[str, Finding]) -> list[Metric]:
    """Status, score, threshold, rows and time of every check's latest finding (pure: no I/O)."""
    status = _gauge(
        "mlops_monitor_check_status", "Latest status of each check (1 for the current one)", ["check", "status"]
    )
    score = _gauge("mlops_monitor_check_score", "Headline score of the latest check", ["check"])
    threshold = _gauge("mlops_monitor_check_threshold", "Threshold the latest score was compared with", ["check"])
    rows = _gauge("mlops_monitor_check_rows", "Rows the latest check looked at", ["check"])
    when = _gauge("mlops_monitor_check_timestamp_seconds", "Unix time of the latest check's finding", ["check"])
    last = _gauge("mlops_monitor_last_check_timestamp_seconds", "Unix time of the newest finding of any check")
    for name, finding in sorted(findings.items()):
        for s in FINDING_STATUSES:
            status.add_metric([name, s], float(finding.status == s))
        _add(score, [name], finding.score)
        _add(threshold, [name], finding.threshold)
        _add(rows, [name], finding.rows)
        _add(when, [name], _timestamp(finding.ts))
    times = [sample.value for sample in when.samples]
    if times:
        last.add_metric([], max(times))
    return [status, score, threshold, rows, when, last]


def detail_families(findings: Mapping[str, Finding]) -> list[Metric]:
    """Per-feature drift, per-version accuracy and per-metric anomaly scores from ``details`` (pure)."""
    share = _gauge(
        "mlops_monitor_drifted_features_ratio", "Share of features that drifted in the latest data drift check"
    )
    feature = _gauge("mlops_monitor_feature_drift_score", "Drift test statistic per feature", ["feature", "method"])
    feature_threshold = _gauge("mlops_monitor_feature_drift_threshold", "Drift test threshold per feature", ["feature"])
    drifted = _gauge(
        "mlops_monitor_feature_drifted", "1 if the feature drifted in the latest data drift check", ["feature"]
    )
    online = _gauge("mlops_monitor_online_accuracy_ratio", "Online accuracy from feedback labels", ["model_version"])
    offline = _gauge(
        "mlops_monitor_offline_accuracy_ratio", "Held-out test accuracy at registration", ["model_version"]
    )
    labels = _gauge(
        "mlops_monitor_online_labels", "Labels behind mlops_monitor_online_accuracy_ratio", ["model_version"]
    )
    anomaly = _gauge("mlops_monitor_anomaly_score", "Largest robust z-score toward bad per live metric", ["metric"])
    if (data := findings.get("data_drift")) is not None:
        _add(share, [], data.score)  # the check's score is the drifted share; details["drift_share"] is its threshold
        for name, entry in _entries(data.details, "features"):
            _add(feature, [name, str(entry.get("method", ""))], entry.get("score"))
            _add(feature_threshold, [name], entry.get("threshold"))
            if isinstance(entry.get("drifted"), bool):
                drifted.add_metric([name], float(entry["drifted"]))
    if (concept := findings.get("concept_drift")) is not None:
        for version, entry in _entries(concept.details, "versions"):
            _add(online, [version], entry.get("online"))
            _add(offline, [version], entry.get("offline"))
            _add(labels, [version], entry.get("labels"))
    if (anomalies := findings.get("anomaly")) is not None:
        for metric, entry in _entries(anomalies.details, "metrics"):
            _add(anomaly, [metric], entry.get("max_abs_score"))
    return [share, feature, feature_threshold, drifted, online, offline, labels, anomaly]


def rollout_families(rollout: RolloutState) -> list[Metric]:
    """Status, weight, step, challenger and times of the persisted rollout (pure); ``idle`` if none ever ran."""
    status = _gauge("mlops_rollout_status", "Rollout status (1 for the current one)", ["status"])
    for s in STATUSES:
        status.add_metric([s], float(rollout.status == s))
    weight = _gauge("mlops_rollout_challenger_weight_ratio", "Challenger's share of traffic set by the rollout (0-1)")
    weight.add_metric([], rollout.weight)
    step = _gauge("mlops_rollout_step", "Index of the current step in rollout.steps (0 = first)")
    step.add_metric([], float(rollout.step_index))
    info = _gauge("mlops_rollout_challenger_info", "Challenger version of the current rollout (value 1)", ["version"])
    if rollout.challenger_version is not None:
        info.add_metric([str(rollout.challenger_version)], 1.0)
    started = _gauge("mlops_rollout_started_timestamp_seconds", "Unix time the current rollout started")
    if rollout.started_at is not None:
        started.add_metric([], rollout.started_at.timestamp())
    aborted = _gauge("mlops_rollout_aborted_timestamp_seconds", "Unix time the current rollout was aborted")
    aborts = [event.at for event in rollout.history if event.event == "abort"]
    if rollout.status == "aborted" and aborts:
        aborted.add_metric([], aborts[-1].timestamp())
    return [status, weight, step, info, started, aborted]


class MonitorCollector:
    """A prometheus_client collector over the last `MonitorState` read (refreshed by the poller)."""

    def __init__(self) -> None:
        self._read: Callable[[], MonitorState] | None = None
        self._state: MonitorState | None = None
        self._read_ok = 0.0
        self._failures = 0
        self._lock = threading.Lock()
        self.last_error: str | None = None

    def attach(self, read: Callable[[], MonitorState]) -> None:
        """Set where the state comes from (the runtime attaches its state store at startup)."""
        self._read = read

    def refresh(self) -> bool:
        """Read the state once; on failure keep the last snapshot, log, and report it (False)."""
        if self._read is None:
            return False
        with self._lock:
            try:
                state = self._read()
            # A database outage, or a stored finding / rollout this version cannot parse: the poller
            # thread must survive both, and the dashboards keep the last known values.
            except (sa.exc.SQLAlchemyError, ValueError, TypeError, KeyError) as err:
                self._failures += 1
                self._read_ok = 0.0
                self.last_error = redact(f"{type(err).__name__}: {err}")[:500]
                log.warning("monitoring state not refreshed, exporting the last values: %s", self.last_error)
                return False
            self._state, self._read_ok, self.last_error = state, 1.0, None
            return True

    def describe(self) -> list[Metric]:
        return []  # names vary with the findings present; nothing to check for duplicates up front

    def collect(self) -> Iterator[Metric]:
        state = self._state  # one reference read: a consistent snapshot even while the poller swaps it
        yield GaugeMetricFamily(
            "mlops_monitor_state_read_ok",
            "1 if the last read of findings and rollout state succeeded",
            value=self._read_ok,
        )
        yield CounterMetricFamily(
            "mlops_monitor_state_read_failures", "Failed reads of findings and rollout state", value=self._failures
        )
        if state is not None:
            yield from check_families(state.findings)
            yield from detail_families(state.findings)
            yield from rollout_families(state.rollout)
