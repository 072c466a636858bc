"""Demo ``anomaly``: a latency spike and an error burst in the live metrics, found by a detector that learns normal.

Concept: anomaly detection on live metrics (C36). Two parts. First a seeded p99-latency series
(one point a minute) is streamed through the EWMA + robust z-score detector, point by point as a
scheduler would feed it; a spike and a lasting slowdown are injected. Then a simulated hour of
served predictions is written to a prediction log of its own (a separate SQLite file in the state
folder, so no real traffic is mixed with it), read back with the same reader the monitoring uses,
turned into per-minute series and checked: the finding names the metric and the minute. Both parts
are drawn into the demo's report folder (``reports/anomaly-demo``): each series with its EWMA baseline,
the band it must stay in, and the flagged points.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from lab.demos.prep import display_path
from monitoring.anomaly import LIVE_METRICS, EwmaDetector, check_anomalies, detect, live_metrics
from monitoring.anomaly_plot import PICTURE, plot_anomaly_band
from serving.log_reader import recent_predictions
from serving.prediction_log import PredictionLog, PredictionRecord

if TYPE_CHECKING:
    from pathlib import Path

    from core.context import LabContext
    from lab.narrate import Narrator

SPIKE_MINUTE, SLOWDOWN_MINUTE, MINUTES = 50, 75, 100
LOG_SPIKE, LOG_ERRORS, LOG_MINUTES, PER_MINUTE = 40, 52, 60, 20
STREAM_PICTURE = "latency-stream.png"


def latency_series(seed: int = 7) -> list[float]:
    """p99 latency per minute around 40 ms, a 4x spike at SPIKE_MINUTE, 1.6x slower from SLOWDOWN_MINUTE."""
    import numpy as np

    rng = np.random.default_rng(seed)
    values = 40.0 * rng.lognormal(0.0, 0.1, MINUTES)
    values[SPIKE_MINUTE] *= 4.0
    values[SLOWDOWN_MINUTE:] *= 1.6
    return [round(float(v), 1) for v in values]


def write_simulated_log(path: Path, seed: int = 8) -> str:
    """An hour of predictions in a fresh SQLite log: a latency spike at LOG_SPIKE, errors at LOG_ERRORS."""
    import numpy as np

    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    log = PredictionLog(url, batch_size=200, max_delay=0.05).start()
    try:
        for minute in range(LOG_MINUTES):
            for i in range(PER_MINUTE):
                failed = minute == LOG_ERRORS and i < 5
                confidence = float(rng.uniform(0.8, 0.99))
                latency = float(rng.lognormal(math.log(3.0), 0.2)) * (8.0 if minute == LOG_SPIKE else 1.0)
                log.record(
                    PredictionRecord(
                        request_id=f"sim-{minute:02d}-{i:02d}",
                        model_name="simulated",
                        model_version="1",
                        features={},
                        prediction=None if failed else "setosa",
                        probabilities=None if failed else {"setosa": confidence, "versicolor": 1 - confidence},
                        latency_ms=latency,
                        status="error" if failed else "ok",
                        ts=t0 + timedelta(minutes=minute, seconds=3 * i),
                    )
                )
        log.flush()
    finally:
        log.close()
    return url


def run(n: Narrator, ctx: LabContext) -> None:
    """Stream a latency series through the detector, then check an hour of logged predictions."""
    cfg = ctx.params.monitoring.anomaly
    n.title("Anomalies on live metrics: learn normal, flag the rest", "C36 anomaly detection")

    n.step(f"Stream {MINUTES} minutes of p99 latency into the detector (seeded series)")
    n.say(f"a 4x spike at minute {SPIKE_MINUTE}; from minute {SLOWDOWN_MINUTE} every request is 1.6x slower")
    spec = LIVE_METRICS["latency_p99"]
    detector = EwmaDetector.from_params(cfg, spec.min_scale, spec.direction)
    rows, flagged = [], []
    for minute, value in enumerate(latency_series()):
        verdict = detector.update(math.log(value))
        if verdict.is_anomaly:
            flagged.append(minute)
        if minute in (cfg.warmup, SPIKE_MINUTE - 1, SPIKE_MINUTE, SPIKE_MINUTE + 1) or (
            SLOWDOWN_MINUTE - 1 <= minute <= SLOWDOWN_MINUTE + 3
        ):
            rows.append([minute, f"{value:.1f}", f"{verdict.score:+.1f}", "ANOMALY" if verdict.is_anomaly else ""])
    n.table("selected minutes", ["minute", "p99 ms", "robust z (log scale)", "flag"], rows)
    n.ok(f"flagged minutes: {flagged}")
    out_dir = ctx.settings.reports_dir / "anomaly-demo"
    streamed = detect(latency_series(), cfg, spec.min_scale, spec.direction, log=True)  # the same detector, batched
    plot_anomaly_band({"latency_p99": streamed}, out_dir / STREAM_PICTURE, cfg.warmup, "p99 per minute")
    n.say(f"picture: {display_path(ctx, out_dir / STREAM_PICTURE)} (the series, its EWMA, the band, the flags)")
    n.why(
        f"baseline = EWMA (alpha {cfg.alpha}); noise = median absolute deviation of recent residuals, which a "
        f"spike cannot inflate; flag when z > {cfg.z_threshold}, never in the first {cfg.warmup} points"
    )
    n.why("the slowdown is flagged when it starts, then becomes the new normal: alert on change, not on a level")

    n.step(f"A simulated hour of predictions in its own log: {LOG_MINUTES} minutes x {PER_MINUTE} requests")
    url = write_simulated_log(ctx.settings.state / "anomaly-demo.db")
    frame = recent_predictions(url)
    series = live_metrics(frame)
    n.say(
        f"{len(frame)} logged predictions -> {len(series)} one-minute intervals of "
        "latency p50/p99, error rate, mean confidence"
    )
    finding = check_anomalies(frame, cfg, out_dir=out_dir)
    n.table(
        "per metric",
        ["metric", "direction", "flagged minutes (z)"],
        [
            [
                metric,
                LIVE_METRICS[metric].direction,
                ", ".join(f"{f['ts'][11:16]} ({f['score']:+.1f})" for f in info["flagged"]) or "-",
            ]
            for metric, info in finding.details["metrics"].items()
        ],
    )
    (n.bad if finding.fired else n.ok)(f"anomaly {finding.status}: {finding.summary}")
    n.why("each metric is judged against its own history; latency on a log scale, because its noise is multiplicative")
    n.say(f"picture: {display_path(ctx, out_dir / PICTURE)} (each metric, its band, the flagged minutes)")
    n.code(
        "monitoring/anomaly.py::EwmaDetector",
        "monitoring/anomaly.py::live_metrics",
        "monitoring/anomaly.py::check_anomalies",
    )
