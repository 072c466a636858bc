"""The decay demos (concept drift, attribution drift, anomalies) run on a fresh state and reach their verdicts.

They share one state folder, as a learner running them in a row would. Their timings are measured,
not asserted here: `mlops-lab demo-timings` (run by `make bench`) times every demo.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from core.context import LabContext
from core.findings import latest_findings
from serving.prediction_log import make_engine


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory, make_settings, demo_context) -> LabContext:
    settings = make_settings(tmp_path_factory.mktemp("decay-demos") / "state", poll_interval_s=3600)
    return demo_context(settings)


def run_clean(run_demo: Callable[..., str], name: str, ctx: LabContext) -> str:
    out = run_demo(name, ctx, width=200)
    assert "Traceback" not in out
    return out


@pytest.mark.integration
@pytest.mark.slow
def test_concept_drift_demo_sees_accuracy_fall_while_inputs_stay(run_demo, ctx: LabContext) -> None:
    out = run_clean(run_demo, "concept_drift", ctx)
    assert "concept_drift inconclusive" in out  # 30 labels: no verdict
    assert "concept_drift ok" in out  # 150 clean labels
    assert "inputs identical to a clean batch of the same seed: True" in out
    fired = re.search(r"concept_drift fired: .*v\d+: (\d+\.\d)% online on 200 labels", out)
    assert fired is not None
    assert float(fired.group(1)) < 70  # 50 clean + 150 relabelled answers: measured about 50 %
    engine = make_engine(ctx.settings.prediction_log_uri)
    try:
        assert latest_findings(engine)["concept_drift"].status == "fired"
    finally:
        engine.dispose()


@pytest.mark.integration
@pytest.mark.slow
def test_attribution_demo_is_quiet_on_clean_traffic_and_fires_when_the_reasons_change(
    run_demo, ctx: LabContext
) -> None:
    out = run_clean(run_demo, "attribution", ctx)
    verdicts = re.findall(r"attribution_drift (\w+): attribution shift (\d\.\d\d)", out)
    statuses = [status for status, _ in verdicts]
    # clean, stuck petal sensors, concept shift without labels, concept shift with labels
    assert statuses == ["ok", "fired", "ok", "fired"]
    scores = [float(score) for _, score in verdicts]
    assert scores[0] < 0.1
    assert scores[1] > 0.9


@pytest.mark.integration
@pytest.mark.slow
def test_anomaly_demo_flags_the_spike_the_slowdown_and_the_error_burst(run_demo, ctx: LabContext) -> None:
    from lab.demos.anomaly import SLOWDOWN_MINUTE, SPIKE_MINUTE

    out = run_clean(run_demo, "anomaly", ctx)
    flagged = re.search(r"flagged minutes: \[([\d, ]*)\]", out)
    assert flagged is not None
    minutes = [int(m) for m in flagged.group(1).split(",")]
    assert SPIKE_MINUTE in minutes
    assert SLOWDOWN_MINUTE in minutes
    assert all(m in (SPIKE_MINUTE, SLOWDOWN_MINUTE, SLOWDOWN_MINUTE + 1) for m in minutes)
    assert "anomaly fired" in out
    assert "latency_p99 at 09:40" in out  # the simulated log's spike minute (LOG_SPIKE = 40)
    assert "error_rate at 09:52" in out  # and its error burst (LOG_ERRORS = 52)
    assert "mean_confidence at" not in out
    pictures = ctx.settings.reports_dir / "anomaly-demo"
    for name in ("latency-stream.png", "anomaly-band.png"):  # the band pictures, in the demo's report folder
        assert (pictures / name).stat().st_size > 10_000
        assert f"anomaly-demo/{name}" in out
