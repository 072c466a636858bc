"""`mlops-lab demo alerts` on a fresh state: the series it shows, promtool's verdicts, nothing leaked.

The demo plants a fired drift finding and an aborted rollout in a scratch database; the test checks
that they reach /metrics and that the state's own database never sees them (the real retraining
loop reads that one).
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from core.context import LabContext

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory, make_settings, demo_context) -> LabContext:
    settings = make_settings(tmp_path_factory.mktemp("alert-demos") / "state", poll_interval_s=3600)
    return demo_context(settings)


def test_alerts_demo_scrapes_series_and_runs_promtool(run_demo, ctx: LabContext) -> None:
    out = run_demo("alerts", ctx, width=220)  # a fresh state: the demo trains its champion first

    assert "no champion yet: training the first model" in out
    assert "40 predictions answered by v1, and one invalid request (422)" in out
    assert re.search(r'http_requests_total\{method="POST",route="/v1/predict",status="200"\}\s+│ 40\.0', out)
    assert re.search(r'mlops_monitor_check_status\{check="data_drift",status="fired"\}\s+│ 1\.0', out)
    assert re.search(r"mlops_monitor_drifted_features_ratio\s+│ 0\.5", out)
    assert re.search(r'mlops_rollout_status\{status="aborted"\}\s+│ 1\.0', out)
    assert re.search(r"✔ promtool check rules: SUCCESS: \d+ rules found", out)
    assert re.search(r"✔ promtool test rules: SUCCESS: \d+ scenarios, \d+ expected firings", out)
    assert "✔ a wrong expectation fails the unit tests (exit 1)" in out
    assert "monitoring/grafana/dashboards/mlops-lab.json: " in out
    assert "✘" not in out

    # The planted finding went to the scratch database only.
    engine = sa.create_engine(ctx.settings.prediction_log_uri)
    try:
        assert not sa.inspect(engine).has_table("monitor_latest")
    finally:
        engine.dispose()
