"""The narrated demos of the training spine run on a fresh state and say what they claim.

Each demo is what a candidate runs in front of an interviewer, so a demo that breaks or stops
showing its point is a bug. They share one state folder here, in the order a learner would run them.
"""

from __future__ import annotations

import pytest

from core.context import LabContext
from core.params import Params

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory, make_settings, demo_context) -> LabContext:
    settings = make_settings(tmp_path_factory.mktemp("demos") / "state")
    # The demos ingest into dataset.path; point it into the temporary state so the repo stays untouched.
    return demo_context(settings)


@pytest.fixture
def flow_env():
    """A temporary Prefect API for the demos that run flows (the demo passes its settings to them)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


def test_features_demo_shows_derived_features_inside_the_model(run_demo, ctx: LabContext) -> None:
    out = run_demo("features", ctx)
    assert "derive: DerivedFeatures" in out
    assert "petal_length_x_petal_width" in out


def test_skew_demo_finds_identical_predictions(run_demo, ctx: LabContext) -> None:
    out = run_demo("skew", ctx)
    assert "identical predictions" in out
    assert ": True" in out


def test_registry_gate_demo_registers_a_challenger_and_rejects_a_worse_model(run_demo, ctx: LabContext) -> None:
    out = run_demo("registry_gate", ctx)
    assert "as alias challenger" in out
    assert "rejected" in out
    assert "below the floor" in out


def test_reproducibility_demo_rebuilds_identically(run_demo, ctx: LabContext) -> None:
    out = run_demo("reproducibility", ctx)
    assert "identical metrics and predictions: True" in out


def test_tracking_demo_narrates_a_search_of_nested_runs_then_the_gate(run_demo, ctx: LabContext) -> None:
    out = run_demo("tracking", ctx)
    trials = ctx.params.train.search.trials
    assert sum(f"│ trial {i} " in out for i in range(trials)) == trials  # one table row per trial
    assert out.count("← winner") == 1
    pruned = out.count("PRUNED")
    assert f"{trials} trials, {pruned} pruned; the winner by CV is trial" in out
    assert "went through the same quality gate" in out
    assert "registered version" in out or "rejected" in out


def test_loop_demo_tells_the_whole_story(run_demo, ctx: LabContext, flow_env: None) -> None:
    from lab.demos import own_state
    from pipelines.registry import current_aliases

    with own_state(ctx, "loop") as story:  # as `mlops-lab demo loop` runs it: a fresh state of its own
        out = run_demo("loop", story, width=400)
    assert "│ corrupted batch" in out
    assert "decision: no retrain - no trigger fired" in out  # clean traffic
    assert "decision: retrain - triggered by data_drift" in out  # drifted traffic
    assert "retrain: started-canary" in out
    assert "rollout promoted: all steps passed" in out
    assert "rollout aborted: analysis at" in out  # the planted challenger
    assert "MLflow UI" in out
    assert current_aliases(story.settings)["champion"] == "2"  # v1 trained, v2 retrained and promoted, v3 rejected


def test_retrain_loop_demo_retrains_once_and_the_cooldown_refuses_the_second(
    run_demo, ctx: LabContext, flow_env: None
) -> None:
    out = run_demo("retrain_loop", ctx, width=400)
    assert "decision: retrain - triggered by data_drift" in out
    assert "retrain: started-canary" in out
    assert "retrain skipped: cooldown" in out
    assert "retrains ever started: 1;" in out


def test_orchestration_demo_shows_the_flow_and_its_task_runs(run_demo, ctx: LabContext, flow_env: None) -> None:
    out = run_demo("orchestration", ctx)
    assert "flow state: COMPLETED" in out
    for task in ("load", "validate", "train", "gate", "register"):
        assert f"{task}-" in out


def test_data_versioning_demo_restores_the_old_version_from_the_remote(
    run_demo, ctx: LabContext, params: Params
) -> None:
    # This demo works in a scratch clone of the repository, so it keeps the repo-relative data path.
    out = run_demo("data_versioning", LabContext(settings=ctx.settings, params=params))
    assert "after checkout: md5" in out
    assert "after pull: md5" in out
    assert "≠ v1" not in out
