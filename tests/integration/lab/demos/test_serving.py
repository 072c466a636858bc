"""The narrated serving demos run on a fresh state and show what they claim.

They share one state folder, in the order a learner would run them, so later demos also prove that
they cope with what earlier ones left behind (a rejected planted challenger, a promoted one, no
challenger at all). Each test asserts the demo's key lines and, where it matters, the state the
demo leaves: routing put back as found, planted models rejected.
"""

from __future__ import annotations

import re

import pytest

from core.context import LabContext
from core.mlflow_config import mlflow_client
from pipelines.registry import current_aliases, list_versions
from serving.router import RoutingState
from serving.state_store import StateStore


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory, make_settings, demo_context) -> LabContext:
    # The poller thread stays quiet: the demos poll explicitly, as they narrate.
    settings = make_settings(tmp_path_factory.mktemp("serving-demos") / "state", poll_interval_s=3600)
    return demo_context(settings)


def routing_now(ctx: LabContext) -> RoutingState:
    store = StateStore(ctx.settings.prediction_log_uri, ctx.params.routing)
    try:
        return store.routing()
    finally:
        store.close()


def planted_statuses(ctx: LabContext) -> list[str]:
    client = mlflow_client(ctx.settings)
    name = ctx.settings.model_name
    return [
        v.status for v in list_versions(ctx.settings) if client.get_model_version(name, v.version).tags.get("planted")
    ]


@pytest.mark.integration
@pytest.mark.slow
def test_canary_demo_promotes_a_good_challenger_and_aborts_a_planted_one(run_demo, ctx: LabContext) -> None:
    out = run_demo("canary", ctx, width=200)
    assert "sticky: 200/200 users" in out
    assert "rollout promoted" in out
    assert "PLANTED" in out
    assert re.search(r"rollout aborted: .*online_accuracy", out)
    assert "weight now 0%" in out
    assert "Traceback" not in out
    aliases = current_aliases(ctx.settings)
    assert "previous" in aliases  # the good challenger was promoted, the old champion kept
    assert set(planted_statuses(ctx)) == {"rejected"}
    assert routing_now(ctx).canary_weight == 0.0
    pictures = ctx.settings.reports_dir / "canary"  # the report folder: each episode, and accuracy per version
    for name in ("episode-1-promote.png", "episode-2-abort.png", "online-accuracy.png"):
        assert (pictures / name).read_bytes()[:4] == b"\x89PNG", name
        assert f"canary/{name}" in out.replace("\n", "")


@pytest.mark.integration
@pytest.mark.slow
def test_blue_green_demo_switches_everyone_and_back(run_demo, ctx: LabContext) -> None:
    out = run_demo("blue_green", ctx, width=200)
    assert "switch moved 100% of requests to green" in out
    assert "switched back: 100% of requests on blue" in out
    assert "20/20 user requests still answered by blue" in out  # the preview moved nobody
    assert routing_now(ctx).strategy == ctx.params.routing.strategy  # put back as found


@pytest.mark.integration
@pytest.mark.slow
def test_shadow_demo_never_changes_a_response(run_demo, ctx: LabContext) -> None:
    out = run_demo("shadow", ctx, width=200)
    assert "responses identical to champion-only answers: 150/150" in out
    assert 'mlops_shadow_predictions_total{agreed="true"}' in out
    assert re.search(r"agreement rate \d+\.\d% \(\d+/150 rows\)", out)
    assert "both models scored on the same 150 labelled requests" in out
    assert re.search(r"shadow +accuracy \d\.\d{3} \(\d+/150\), 95% Wilson", out)
    assert "model time after the response" in out


@pytest.mark.integration
@pytest.mark.slow
def test_ab_test_demo_guards_then_tests(run_demo, ctx: LabContext) -> None:
    out = run_demo("ab_test", ctx, width=200)
    assert "no verdict yet: fixed horizon not reached" in out
    assert "returning users kept their arm: 40/40" in out
    assert re.search(r"95 % CI \[[+-]\d+\.\d%, [+-]\d+\.\d%\], z = -?\d+\.\d+, p = \d\.\d{3} \(score test", out)
    assert routing_now(ctx).strategy == ctx.params.routing.strategy
    for name in ("ab-interval-first-look.png", "ab-interval.png"):  # in the demo's report folder
        assert (ctx.settings.reports_dir / "ab-test" / name).read_bytes()[:4] == b"\x89PNG", name


@pytest.mark.integration
@pytest.mark.slow
def test_bandit_demo_shifts_traffic_to_the_better_arm(run_demo, ctx: LabContext) -> None:
    out = run_demo("bandit", ctx, width=200)
    shifted = re.search(r"champion share \d+% in round 1, (\d+)% in round \d+", out)
    assert shifted is not None
    assert int(shifted.group(1)) > 70
    assert "Thompson sampling lost" in out
    assert set(planted_statuses(ctx)) == {"rejected"}  # the bandit's planted arm is retired too
    assert routing_now(ctx).strategy == ctx.params.routing.strategy


@pytest.mark.integration
@pytest.mark.slow
def test_serving_rollback_demo_fails_no_request(run_demo, ctx: LabContext) -> None:
    champion = current_aliases(ctx.settings)["champion"]
    out = run_demo("serving_rollback", ctx, width=200)
    assert "on every protocol" in out
    assert "degraded=True" in out  # the simulated registry outage was visible ...
    assert "degraded=False after the next poll" in out  # ... and over once the backoff passed
    assert "more requests answered from the cached models during the outage" in out
    assert ", 0 failed requests" in out
    assert "every client switched" in out
    assert current_aliases(ctx.settings)["champion"] == champion  # rolled back to where it started


def test_two_proportion_test_matches_a_hand_computation() -> None:
    from monitoring.ab_stats import ArmOutcome, labels_needed, two_proportion_test

    result = two_proportion_test(ArmOutcome(100, 90), ArmOutcome(100, 80))
    # pooled p = 0.85, pooled z = -0.10 / sqrt(0.85 * 0.15 * 2 / 100); the score test scales it by sqrt(199 / 200)
    assert result.difference == pytest.approx(-0.10)
    assert result.z == pytest.approx(-0.10 / (0.85 * 0.15 * 0.02) ** 0.5 * (199 / 200) ** 0.5)
    assert result.p_value == pytest.approx(0.0484, abs=5e-4)
    z = 1.959964

    def wilson(p: float, n: int) -> tuple[float, float]:
        centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
        return centre - half / (1 + z * z / n), centre + half / (1 + z * z / n)

    (la, ua), (lb, ub) = wilson(0.9, 100), wilson(0.8, 100)  # Newcombe: built from the two Wilson intervals
    low, high = -0.10 - ((0.8 - lb) ** 2 + (ua - 0.9) ** 2) ** 0.5, -0.10 + ((ub - 0.8) ** 2 + (0.9 - la) ** 2) ** 0.5
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), abs=1e-5)
    assert 300 < labels_needed(0.95, 0.05) < 500
