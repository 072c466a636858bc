"""The closed loop on real parts: the API logs traffic, the Prefect `monitoring` flow checks it, a drift
trigger starts exactly one guarded retrain, whose challenger goes out as a canary and is promoted on live
metrics; a retrain the gate refuses leaves the champion serving.

One state folder for the module, walked in the order production would: clean traffic, drifted traffic,
a second look inside the cooldown, the canary, then a refused retrain.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from core.context import LabContext
from core.findings import CHECKS, latest_findings
from core.params import load_params
from lab.demos.traffic import DemoService, running_service, users
from monitoring.retrain_guard import guard_state
from pipelines.registry import current_aliases, list_versions
from pipelines.training_steps import run_training
from serving.log_reader import labelled_window
from serving.prediction_log import make_engine

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory, make_settings, demo_context) -> Iterator[LabContext]:
    """A champion trained on iris, flows pointed at this state, Prefect's test harness running."""
    from prefect.testing.utilities import prefect_test_harness

    from lab.demos.prep import ensure_raw_data

    ctx = demo_context(make_settings(tmp_path_factory.mktemp("loop") / "state"))
    patch = pytest.MonkeyPatch()
    patch.setenv("MLOPS_STATE_DIR", str(ctx.settings.state))
    patch.setenv("MLOPS_PROJECT_DIR", str(REPO))
    assert run_training(ctx.settings, ctx.params, ensure_raw_data(ctx)).alias == "champion"
    with prefect_test_harness(server_startup_timeout=90):
        yield ctx
    patch.undo()


@pytest.fixture(scope="module")
def service(loop: LabContext) -> Iterator[DemoService]:
    with running_service(loop, restore_routing=False) as svc:
        yield svc


def test_clean_traffic_is_checked_recorded_and_starts_no_retrain(loop: LabContext, service: DemoService) -> None:
    from flows.monitoring_flow import monitoring_flow

    traffic = service.send(users("u", 300), seed=1)
    assert traffic.failed == 0
    outcome = monitoring_flow(loop.settings, loop.params)
    found = outcome.by_check()
    assert sorted(found) == sorted(CHECKS)  # every check ran and answered
    assert not [f.summary for f in outcome.findings if f.summary.startswith("check failed")]
    assert found["data_drift"].status == "ok"
    assert found["prediction_drift"].status == "ok"
    assert found["concept_drift"].status == "ok"
    assert not outcome.decision.retrain
    assert outcome.retrain is None
    assert (Path(outcome.report_dir) / "data-drift.html").exists()
    assert (Path(outcome.report_dir) / "findings-over-time.png").stat().st_size > 10_000  # drawn from the history
    assert (Path(outcome.report_dir) / "anomaly-band.png").exists() == ("png" in found["anomaly"].reports)
    engine = make_engine(loop.settings.prediction_log_uri)
    try:
        assert latest_findings(engine)["data_drift"].status == "ok"  # what /metrics exports
        window = loop.params.monitoring.concept_drift.window * 4  # the labelled window the checks read
        labelled = labelled_window(engine, last_n=window, model_name=loop.settings.model_name)
    finally:
        engine.dispose()
    # The online accuracy picture sits with the reports, drawn from the table beside it, which counts the log's labels.
    assert (Path(outcome.report_dir) / "online-accuracy.png").read_bytes()[:4] == b"\x89PNG"
    table = pd.read_csv(Path(outcome.report_dir) / "online-accuracy.csv", dtype={"model_version": str})
    assert len(labelled) > 0
    assert table["labelled"].sum() == len(labelled)
    assert table["correct"].sum() == int(labelled["correct"].sum())
    assert set(table["model_version"]) == set(labelled["model_version"].astype(str))


def test_drift_starts_exactly_one_retrain_whose_challenger_goes_out_as_a_canary(
    loop: LabContext, service: DemoService
) -> None:
    from flows.monitoring_flow import monitoring_flow

    versions_before = len(list_versions(loop.settings))
    service.send(users("u", 500), seed=2, kind="covariate-shift")
    first = monitoring_flow(loop.settings, loop.params)
    assert first.by_check()["data_drift"].fired
    assert first.decision.retrain
    assert first.retrain is not None
    assert first.retrain.status == "started-canary", first.retrain.reason
    assert first.retrain.production_rows > 0
    aliases = current_aliases(loop.settings)
    assert aliases["challenger"] == first.retrain.version
    rollout = service.store.rollout()
    assert rollout.status == "running"
    assert rollout.challenger_version == first.retrain.version
    assert service.store.routing().canary_weight == loop.params.rollout.steps[0] / 100

    again = monitoring_flow(loop.settings, loop.params)  # the drift is still there: the cooldown holds it back
    assert again.decision.retrain
    assert again.retrain is not None
    assert again.retrain.status == "skipped"
    assert "cooldown" in again.retrain.reason
    assert len(list_versions(loop.settings)) == versions_before + 1
    engine = make_engine(loop.settings.prediction_log_uri)
    try:
        guard = guard_state(engine)
    finally:
        engine.dispose()
    assert guard["starts"] == 1
    assert guard["holder"] is None
    assert guard["last_result"].startswith("started-canary")


def test_the_retrained_challenger_is_promoted_on_live_metrics(loop: LabContext, service: DemoService) -> None:
    from lab.demos.canary import demo_params
    from serving.rollout_controller import tick

    params = demo_params(loop.params)
    challenger = current_aliases(loop.settings)["challenger"]
    assert service.runtime.log is not None
    for round_ in range(12):
        service.refresh()
        service.send(users("c", 400), seed=10 + round_, kind="covariate-shift")
        service.flush()
        result = tick(loop.settings, params, service.store, service.runtime.log.engine)
        if result.action.kind in ("promote", "abort"):
            break
    assert result.action.kind == "promote", result.action.reason
    assert current_aliases(loop.settings)["champion"] == challenger


def test_a_retrain_the_gate_refuses_leaves_the_champion_serving(
    loop: LabContext, service: DemoService, tmp_path: Path
) -> None:
    from flows.retraining_flow import retraining_flow

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["gate"]["min_metric"] = 1.01  # no model can pass: the retrain must be rejected
    raw["monitoring"]["retrain"]["cooldown_minutes"] = 0
    strict = tmp_path / "params.yaml"
    strict.write_text(yaml.safe_dump(raw))
    champion = current_aliases(loop.settings)["champion"]
    outcome = retraining_flow(
        loop.settings, load_params(strict), trigger="manual", reason="test: a retrain the gate refuses"
    )
    assert outcome.status == "rejected"
    assert "floor" in outcome.reason
    assert current_aliases(loop.settings)["champion"] == champion
    # The promotion above moved the champion alias; apply it now, as every worker's poller does within
    # poll_interval_s (under load the background reload may not have finished yet: that race is not this test's).
    service.refresh()
    answer = service.send(users("after", 20), seed=99, feedback=False)
    assert answer.failed == 0
    assert set(answer.versions) == {champion}
    assert service.store.rollout().status == "promoted"


def test_monitor_cli_dry_run_reports_and_never_retrains(loop: LabContext, service: DemoService) -> None:
    from typer.testing import CliRunner

    from cli.app import app

    versions = len(list_versions(loop.settings))
    result = CliRunner().invoke(app, ["monitor", "--dry-run", "--window", "200"], env={"COLUMNS": "200"})
    assert "data_drift" in result.output
    assert "decision:" in result.output
    assert result.exit_code == (2 if "│ fired" in result.output else 0), result.output
    assert "retrain:" not in result.output
    assert len(list_versions(loop.settings)) == versions


def test_scheduled_deployments_follow_the_crons_in_params(loop: LabContext) -> None:
    from cli.monitor import scheduled_deployments

    weekly = loop.params.monitoring.model_copy(
        update={"retrain": loop.params.monitoring.retrain.model_copy(update={"schedule": "0 3 * * 0"})}
    )
    checks_only, with_retrain = (
        scheduled_deployments(loop.params),
        scheduled_deployments(loop.params.model_copy(update={"monitoring": weekly})),
    )
    assert [d.schedules[0].schedule.cron for d in checks_only] == [loop.params.monitoring.schedule]
    assert [d.parameters["requested"] for d in with_retrain] == [None, "schedule"]
    assert with_retrain[1].schedules[0].schedule.cron == "0 3 * * 0"
