"""Findings and rollout state as gauges: the right samples, nothing invented, last values kept on outages."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core.findings import Finding, save_findings
from core.params import ConceptDriftParams, RolloutParams, RoutingParams
from monitoring.concept_drift import check_concept_drift
from serving.canary_analysis import Analysis
from serving.monitor_metrics import MonitorCollector, MonitorState, read_monitor_state
from serving.rollout import RolloutState, abort, advance, start
from serving.state_store import StateStore

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
STEPS = RolloutParams(steps=[10, 50, 100])
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(collector: MonitorCollector) -> Samples:
    """Render the collector as /metrics would and parse it back: (name, labels) -> value."""
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def fixed(state: MonitorState) -> MonitorCollector:
    collector = MonitorCollector()
    collector.attach(lambda: state)
    assert collector.refresh()
    return collector


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_each_check_exports_its_status_one_hot_and_only_the_figures_it_has() -> None:
    findings = {
        "data_drift": Finding("data_drift", "fired", 0.75, 0.5, "3 of 4", rows=500, ts="2025-01-01T12:00:00+00:00"),
        "prediction_drift": Finding("prediction_drift", "inconclusive", None, 0.01, "too few", rows=20,
                                    ts="2025-01-01T13:00:00+00:00"),
    }  # fmt: skip
    samples = scrape(fixed(MonitorState(findings, RolloutState())))
    status = {
        (dict(k[1])["check"], dict(k[1])["status"]): v
        for k, v in samples.items()
        if k[0] == "mlops_monitor_check_status"
    }
    assert status == {
        ("data_drift", "ok"): 0, ("data_drift", "fired"): 1, ("data_drift", "inconclusive"): 0,
        ("prediction_drift", "ok"): 0, ("prediction_drift", "fired"): 0, ("prediction_drift", "inconclusive"): 1,
    }  # fmt: skip
    assert samples[key("mlops_monitor_check_score", check="data_drift")] == 0.75
    assert key("mlops_monitor_check_score", check="prediction_drift") not in samples  # None is no sample, not 0
    assert samples[key("mlops_monitor_check_threshold", check="prediction_drift")] == 0.01
    assert samples[key("mlops_monitor_drifted_features_ratio")] == 0.75
    assert (
        samples[key("mlops_monitor_last_check_timestamp_seconds")] == datetime(2025, 1, 1, 13, tzinfo=UTC).timestamp()
    )
    assert not any(name.startswith("monitor_check") and "concept_drift" in str(labels) for name, labels in samples)


def test_per_feature_and_per_metric_details_become_labelled_series() -> None:
    data = Finding("data_drift", "ok", 0.25, 0.5, "1 of 4", details={
        "features": {"petal_length": {"method": "K-S p_value", "score": 0.004, "threshold": 0.05, "drifted": True},
                     "sepal_width": {"method": "K-S p_value", "score": 0.61, "threshold": 0.05, "drifted": False}},
        "drift_share": 0.5,  # the threshold, not the drifted share
    })  # fmt: skip
    anomaly = Finding("anomaly", "ok", 1.2, 4.0, "quiet", details={"metrics": {"latency_p99": {"max_abs_score": 1.2}}})
    samples = scrape(fixed(MonitorState({"data_drift": data, "anomaly": anomaly}, RolloutState())))
    assert samples[key("mlops_monitor_drifted_features_ratio")] == 0.25
    assert samples[key("mlops_monitor_feature_drift_score", feature="petal_length", method="K-S p_value")] == 0.004
    assert samples[key("mlops_monitor_feature_drift_threshold", feature="sepal_width")] == 0.05
    assert samples[key("mlops_monitor_feature_drifted", feature="petal_length")] == 1
    assert samples[key("mlops_monitor_feature_drifted", feature="sepal_width")] == 0
    assert samples[key("mlops_monitor_anomaly_score", metric="latency_p99")] == 1.2


def test_online_and_offline_accuracy_come_from_a_real_concept_drift_finding() -> None:
    # Version 1: 60 labels, 45 correct (75 %), offline 93 %: fired. Version 2: 10 labels: inconclusive.
    labelled = pd.DataFrame({
        "model_version": ["1"] * 60 + ["2"] * 10,
        "correct": [True] * 45 + [False] * 15 + [True] * 10,
        "ts": pd.date_range("2025-01-01", periods=70, freq="min", tz="UTC"),
    })  # fmt: skip
    finding = check_concept_drift(labelled, {"1": 0.93, "2": 0.9}, ConceptDriftParams(min_labels=50))
    samples = scrape(fixed(MonitorState({"concept_drift": finding}, RolloutState())))
    assert samples[key("mlops_monitor_online_accuracy_ratio", model_version="1")] == pytest.approx(0.75)
    assert samples[key("mlops_monitor_offline_accuracy_ratio", model_version="1")] == pytest.approx(0.93)
    assert samples[key("mlops_monitor_online_labels", model_version="2")] == 10
    assert samples[key("mlops_monitor_check_status", check="concept_drift", status="fired")] == 1
    assert samples[key("mlops_monitor_check_score", check="concept_drift")] == pytest.approx(0.18)


def test_rollout_gauges_follow_the_state_machine() -> None:
    idle = scrape(fixed(MonitorState({}, RolloutState())))
    assert idle[key("mlops_rollout_status", status="idle")] == 1
    assert idle[key("mlops_rollout_status", status="running")] == 0
    assert idle[key("mlops_rollout_challenger_weight_ratio")] == 0
    assert not any(n == "mlops_rollout_challenger_info" for n, _ in idle)

    running, _ = start("7", STEPS, T0)
    stepped, _ = advance(running, Analysis("pass", ()), STEPS, T0 + timedelta(minutes=5))
    samples = scrape(fixed(MonitorState({}, stepped)))
    assert samples[key("mlops_rollout_status", status="running")] == 1
    assert samples[key("mlops_rollout_challenger_weight_ratio")] == 0.5
    assert samples[key("mlops_rollout_step")] == 1
    assert samples[key("mlops_rollout_challenger_info", version="7")] == 1
    assert samples[key("mlops_rollout_started_timestamp_seconds")] == T0.timestamp()
    assert key("mlops_rollout_aborted_timestamp_seconds") not in samples

    aborted, _ = abort(stepped, T0 + timedelta(minutes=9), "p99 latency above the limit")
    samples = scrape(fixed(MonitorState({}, aborted)))
    assert samples[key("mlops_rollout_status", status="aborted")] == 1
    assert samples[key("mlops_rollout_challenger_weight_ratio")] == 0
    assert samples[key("mlops_rollout_aborted_timestamp_seconds")] == (T0 + timedelta(minutes=9)).timestamp()


def test_an_unreadable_database_keeps_the_last_values_and_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    store = StateStore(f"sqlite:///{folder / 'state.db'}", RoutingParams())
    save_findings(store.engine, [Finding("data_drift", "fired", 0.75, 0.5, "drift")])
    store.put_rollout(start("3", STEPS, T0)[0])
    collector = MonitorCollector()
    collector.attach(partial(read_monitor_state, store))
    assert collector.refresh()
    before = scrape(collector)
    assert before[key("mlops_monitor_state_read_ok")] == 1
    assert before[key("mlops_monitor_drifted_features_ratio")] == 0.75

    saved = shutil.copytree(folder, tmp_path / "backup")
    store.engine.dispose()
    shutil.rmtree(folder)  # the database is gone: every connection attempt fails
    assert not collector.refresh()
    during = scrape(collector)
    assert during[key("mlops_monitor_state_read_ok")] == 0
    assert during[key("mlops_monitor_state_read_failures_total")] == 1
    assert collector.last_error is not None
    assert "OperationalError" in collector.last_error
    unchanged = {k: v for k, v in during.items() if not k[0].startswith("mlops_monitor_state_read")}
    assert unchanged == {k: v for k, v in before.items() if not k[0].startswith("mlops_monitor_state_read")}

    shutil.copytree(saved, folder)  # back again: the next poll reads it
    assert collector.refresh()
    assert scrape(collector)[key("mlops_monitor_state_read_ok")] == 1
    store.close()


def test_before_the_first_read_only_the_read_health_is_exported() -> None:
    samples = scrape(MonitorCollector())
    assert samples == {key("mlops_monitor_state_read_ok"): 0, key("mlops_monitor_state_read_failures_total"): 0}
