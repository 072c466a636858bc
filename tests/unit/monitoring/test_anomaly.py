"""Anomaly detection on live metrics: spikes and steps found where they are, a stated false-alarm rate, warmup.

False-alarm rates measured on stationary noise (400 seeds x 300 points, alpha 0.3, z 4, warmup 20):
Gaussian two-sided 0.06 % of judged points, one-sided 0.03 %; log-normal "latency" scored on the raw
scale 0.46 % (its right tail is long), on the log scale 0.03 %. Most false alarms fall in the first
20 judged points, while the noise estimate rests on few residuals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core.params import AnomalyParams
from monitoring.anomaly import EwmaDetector, check_anomalies, detect, live_metrics

CFG = AnomalyParams(alpha=0.3, z_threshold=4.0, warmup=20)


def flagged(points: pd.DataFrame) -> list[int]:
    return [int(i) for i in np.flatnonzero(points["anomaly"].to_numpy())]


@pytest.mark.parametrize("seed", range(10))
def test_a_spike_fires_at_its_index_and_does_not_drag_the_baseline(seed: int) -> None:
    values = np.random.default_rng(seed).normal(50.0, 5.0, 100)
    values[60] += 40.0  # 8 standard deviations
    hits = flagged(detect(values, CFG))
    assert 60 in hits
    assert not set(hits) & (set(range(55, 60)) | set(range(61, 75)))  # neither before nor as an echo after


@pytest.mark.parametrize("seed", range(10))
def test_a_step_fires_when_it_starts_then_becomes_the_new_normal(seed: int) -> None:
    values = np.random.default_rng(seed).normal(50.0, 5.0, 150)
    values[70:] += 30.0
    hits = flagged(detect(values, CFG, direction="up"))
    assert 70 in hits
    assert not [i for i in hits if 60 <= i < 70 or i >= 90]


def test_stationary_noise_rarely_fires() -> None:
    judged = flags_two = flags_up = 0
    for seed in range(200):
        values = np.random.default_rng(seed).normal(50.0, 5.0, 300)
        flags_two += int(detect(values, CFG)["anomaly"].sum())
        flags_up += int(detect(values, CFG, direction="up")["anomaly"].sum())
        judged += 300 - CFG.warmup
    assert flags_two / judged < 0.002  # measured 0.0006 (stated in the module docstring)
    assert flags_up <= flags_two


def test_multiplicative_noise_needs_the_log_scale() -> None:
    raw = logged = 0
    for seed in range(100):
        latency = np.random.default_rng(seed).lognormal(np.log(20.0), 0.3, 300)
        raw += int(detect(latency, CFG, direction="up")["anomaly"].sum())
        logged += int(detect(latency, CFG, direction="up", log=True)["anomaly"].sum())
    assert logged / (100 * 280) < 0.002
    assert raw > 5 * logged  # the long right tail looks like incidents on a linear scale
    with pytest.raises(ValueError, match="positive"):
        detect([1.0, 0.0], CFG, log=True)


@pytest.mark.parametrize("at", [CFG.warmup - 1, CFG.warmup])
def test_nothing_fires_during_warmup(at: int) -> None:
    values = np.random.default_rng(0).normal(50.0, 5.0, 40)
    values[at] += 100.0
    points = detect(values, CFG)
    assert flagged(points) == ([] if at < CFG.warmup else [at])
    assert abs(points["score"].iloc[at]) > CFG.z_threshold  # scored either way, only the flag waits


def test_streaming_and_batch_agree_and_direction_is_respected() -> None:
    values = np.random.default_rng(3).normal(0.9, 0.01, 60)
    values[40] = 0.6  # confidence collapses
    detector = EwmaDetector.from_params(CFG, direction="down")
    streamed = [detector.update(v) for v in values]
    batch = detect(values, CFG, direction="down")
    assert [v.is_anomaly for v in streamed] == batch["anomaly"].tolist()
    assert [i for i, v in enumerate(streamed) if v.is_anomaly] == [40]
    assert streamed[40].score < -CFG.z_threshold
    assert not detect(values, CFG, direction="up")["anomaly"].any()  # a drop is no anomaly for an "up" metric
    assert detector.seen == 60


def test_a_flat_metric_uses_its_noise_floor() -> None:
    values = [0.0] * 30 + [0.005, 0.05]  # error rate: zero, then half a point, then five points
    assert flagged(detect(values, CFG, min_scale=0.01)) == [31]
    with pytest.raises(ValueError, match="finite"):
        EwmaDetector().update(float("nan"))


def log_frame(minutes: int, seed: int, spike_at: int | None = None, errors_at: int | None = None) -> pd.DataFrame:
    """A prediction-log window: 20 requests a minute, latency ~ lognormal around 4 ms, confident answers."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for minute in range(minutes):
        for i in range(20):
            latency = float(rng.lognormal(np.log(4.0), 0.2)) * (10 if minute == spike_at else 1)
            status = "error" if minute == errors_at and i < 6 else "ok"
            confidence = float(rng.uniform(0.85, 0.99))
            rows.append(
                {
                    "ts": t0 + timedelta(minutes=minute, seconds=3 * i),
                    "status": status,
                    "latency_ms": latency,
                    "probabilities": {"setosa": confidence, "versicolor": 1 - confidence} if status == "ok" else None,
                }
            )
    return pd.DataFrame(rows)


def test_live_metrics_per_interval() -> None:
    series = live_metrics(log_frame(5, seed=0, errors_at=2))
    assert list(series.columns) == ["requests", "latency_p50", "latency_p99", "error_rate", "mean_confidence"]
    assert series["requests"].tolist() == [20] * 5
    assert series["error_rate"].tolist() == pytest.approx([0, 0, 0.3, 0, 0])
    assert series["mean_confidence"].between(0.85, 0.99).all()  # failed requests have no confidence
    gap = pd.concat([log_frame(1, 0), log_frame(1, 1).assign(ts=lambda f: f["ts"] + timedelta(minutes=5))])
    assert len(live_metrics(gap)) == 2  # empty minutes are left out, not zero


def test_log_check_names_the_metric_and_the_minute() -> None:
    finding = check_anomalies(log_frame(60, seed=1, spike_at=45, errors_at=50), CFG)
    assert finding.status == "fired"
    metrics = finding.details["metrics"]
    assert [f["ts"][11:16] for f in metrics["latency_p50"]["flagged"]] == ["00:45"]
    assert [f["ts"][11:16] for f in metrics["error_rate"]["flagged"]] == ["00:50"]
    assert metrics["mean_confidence"]["flagged"] == []
    assert "latency_p50 at 00:45" in finding.summary
    assert finding.rows == 60 * 20


@pytest.mark.parametrize("seed", range(5))
def test_log_check_is_quiet_on_normal_traffic(seed: int) -> None:
    finding = check_anomalies(log_frame(60, seed=seed), CFG)
    assert finding.status == "ok"
    assert finding.score is not None
    assert finding.score <= CFG.z_threshold


def test_log_check_with_too_few_intervals_is_inconclusive() -> None:
    finding = check_anomalies(log_frame(CFG.warmup, seed=0, spike_at=CFG.warmup - 1), CFG)
    assert finding.status == "inconclusive"
    with pytest.raises(ValueError, match="log_reader"):
        check_anomalies(pd.DataFrame({"ts": []}), CFG)
