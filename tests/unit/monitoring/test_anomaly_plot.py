"""The anomaly band picture draws what the detector judged: values, baseline, band and flags from `detect`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.params import AnomalyParams
from monitoring.anomaly import check_anomalies, detect
from monitoring.anomaly_plot import PICTURE, plot_anomaly_band
from tests.unit.monitoring.test_anomaly import log_frame

CFG = AnomalyParams(alpha=0.3, z_threshold=4.0, warmup=20)


def same(drawn: list[float], data: pd.Series) -> bool:
    """Equal, NaN where the data has NaN (the points before the detector has a band)."""
    return bool(np.array_equal(np.asarray(drawn, dtype=float), data.to_numpy(dtype=float), equal_nan=True))


def spiky(seed: int = 0) -> np.ndarray:
    values = np.random.default_rng(seed).normal(50.0, 5.0, 120)
    values[60] += 60.0  # a spike
    values[90:] += 40.0  # a lasting step
    return values


@pytest.mark.parametrize("direction", ["both", "up", "down"])
def test_a_point_is_flagged_exactly_when_it_leaves_the_band_on_its_bad_side(direction: str) -> None:
    points = detect(spiky(), CFG, direction=direction)  # type: ignore[arg-type]
    above, below = points["value"] > points["upper"], points["value"] < points["lower"]
    outside = {"both": above | below, "up": above, "down": below}[direction]
    judged = np.arange(len(points)) >= CFG.warmup
    assert points["anomaly"].tolist() == (outside & judged).tolist()
    assert points["anomaly"].any() == (direction != "down")


def test_each_points_score_is_its_distance_from_the_bands_middle_in_half_widths_over_z() -> None:
    values = np.arange(100.0) + np.random.default_rng(2).normal(0.0, 1.0, 100)  # a trend: the EWMA lags behind
    points = detect(values, CFG).dropna()
    middle, half = (points["upper"] + points["lower"]) / 2, (points["upper"] - points["lower"]) / 2
    assert ((points["value"] - middle) / (half / CFG.z_threshold)).to_numpy() == pytest.approx(points["score"])
    assert (middle - points["baseline"]).iloc[
        CFG.warmup :
    ].min() > 1.0  # the band sits above the lagging EWMA, as the scores do


def test_the_band_on_a_log_scale_is_in_the_metrics_own_unit() -> None:
    latency = np.exp(np.random.default_rng(1).normal(np.log(40.0), 0.1, 80))
    latency[50] *= 4
    points = detect(latency, CFG, min_scale=0.05, direction="up", log=True)
    assert points["anomaly"].tolist() == ((points["value"] > points["upper"]) & (points.index >= CFG.warmup)).tolist()
    assert points["baseline"].iloc[10:].between(30, 55).all()  # milliseconds, not log-milliseconds


def test_the_picture_draws_the_detectors_series_and_flags(tmp_path: Path) -> None:
    points = detect(spiky(), CFG)
    path = tmp_path / "reports" / PICTURE
    plotted = plot_anomaly_band({"latency": points}, path, CFG.warmup)
    assert path.stat().st_size > 10_000
    drawn = plotted["latency"]
    for series in ("value", "baseline", "lower", "upper"):
        assert same(drawn[series], points[series]), series
    assert drawn["flagged"] == list(points.index[points["anomaly"]])
    assert 60 in drawn["flagged"]  # the spike
    assert 90 in drawn["flagged"]  # the step


def test_the_check_writes_its_picture_next_to_its_reports(tmp_path: Path) -> None:
    finding = check_anomalies(log_frame(60, seed=1, spike_at=45, errors_at=50), CFG, out_dir=tmp_path)
    assert finding.reports == {"png": str(tmp_path / PICTURE)}
    assert (tmp_path / PICTURE).stat().st_size > 10_000
    assert check_anomalies(log_frame(60, seed=1), CFG).reports == {}  # no folder, no picture


def test_the_checks_flags_are_the_pictures_flags(tmp_path: Path) -> None:
    from monitoring.anomaly import live_metrics, score_live_metrics

    frame = log_frame(60, seed=1, spike_at=45, errors_at=50)
    finding = check_anomalies(frame, CFG)
    scored = score_live_metrics(live_metrics(frame), CFG)
    plotted = plot_anomaly_band(scored, tmp_path / PICTURE, CFG.warmup)
    for metric, info in finding.details["metrics"].items():
        assert [pd.Timestamp(x).isoformat() for x in plotted[metric]["flagged"]] == [f["ts"] for f in info["flagged"]]
        assert same(plotted[metric]["value"], scored[metric]["value"])
