"""Labs 3-6 end to end on one state: each check fails with hints first, then passes once the steps are done.

The steps run through the same code the commands call: ``lab setup`` (run_setup), the traffic client
(``bench/traffic_client.py``, here over the in-process app instead of a socket), routing changes as the
admin API writes them, the rollout controller's ``begin_rollout``/``tick`` and the monitoring flow.
The labs run in workshop order on one state folder, so each one also proves it tolerates what the
previous lab left behind. Answers are not hard-coded: the accepted one is derived from the client's
own counts and compared with the checker's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.traffic_client import Reply, TrafficReport, batch_rows, send_traffic, user_pool
from core.context import LabContext
from lab.demos.traffic import DemoService, running_service
from lab.labs import Check, run_check, run_setup

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[4]


class ClientTransport:
    """The traffic client's transport over the in-process app (Starlette's TestClient)."""

    def __init__(self, service: DemoService) -> None:
        self.client = service.client

    def request(self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]) -> Reply:
        response = self.client.request(method, path, json=body, headers=headers)
        return Reply(response.status_code, response.json() if response.content else {})


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory, make_settings, demo_context) -> Iterator[LabContext]:
    """A champion on a fresh state, Prefect's test harness running (lab 6 runs the flows with these settings)."""
    from prefect.testing.utilities import prefect_test_harness

    from lab.demos.prep import ensure_champion

    lab_ctx = demo_context(make_settings(tmp_path_factory.mktemp("labs-b") / "state"))
    ensure_champion(lab_ctx)
    with prefect_test_harness(server_startup_timeout=90):
        yield lab_ctx


@pytest.fixture(scope="module")
def service(ctx: LabContext) -> Iterator[DemoService]:
    with running_service(ctx, restore_routing=False) as svc:
        yield svc


def send(service: DemoService, rows: int, seed: int, users: int = 100, kind: str = "clean", **kw: Any) -> TrafficReport:
    from pipelines.data import read_csv

    reference = read_csv(service.ctx.settings.resolve(service.ctx.params.dataset.path))
    labelled = batch_rows(kind, reference, service.ctx.params, rows, seed)
    report = send_traffic(ClientTransport(service), labelled, user_pool(users), **kw)
    assert report.failed == 0, report.failures
    return report


def unmet(checks: list[Check]) -> list[str]:
    return [c.name for c in checks if not c.passed]


def test_no_lab_is_judged_before_it_is_started(ctx: LabContext) -> None:
    for number in (3, 4, 5, 6):
        checks = run_check(number, ctx)
        missing = [c for c in checks if not c.passed]
        assert missing, f"lab {number} passed before it was started"
        assert [c.hint for c in missing] == [
            f"run `mlops-lab lab setup {number}`: the check then counts only what you do after it"
        ]


def test_lab3_the_controller_aborts_the_planted_canary(ctx: LabContext, service: DemoService) -> None:
    from serving.rollout_controller import begin_rollout, tick

    assert any("PLANTED" in line for line in run_setup(3, ctx))
    service.refresh()
    begin_rollout(ctx.settings, ctx.params, service.store)
    service.refresh()
    assert "the controller aborted it on a metric" in unmet(run_check(3, ctx))
    report = send(service, 3000, seed=0)  # the lab's hint: 200 labels per arm at 10 % need about 3,000 rows
    assert report.arms["challenger"].labelled >= ctx.params.rollout.min_feedback
    service.flush()
    assert tick(ctx.settings, ctx.params, service.store, service.runtime.log.engine).action.kind == "abort"
    checks = run_check(3, ctx)
    assert unmet(checks) == [], checks
    assert "online_accuracy" in checks[2].detail
    picture = ctx.settings.reports_dir / "lab03" / "rollout-weights.png"  # the check draws the rollout it judged
    assert picture.read_bytes()[:4] == b"\x89PNG"
    assert any(str(picture) in c.detail for c in checks if c.name == "the controller aborted it on a metric")


def test_lab3_started_again_does_not_count_the_earlier_abort(ctx: LabContext, service: DemoService) -> None:
    """The issue's case: a canary aborted before the lab started (an earlier attempt, a demo) proves nothing."""
    from serving.state_store import StateStore

    assert unmet(run_check(3, ctx)) == []  # as the test above left it
    run_setup(3, ctx)
    store = StateStore(ctx.settings.prediction_log_uri, ctx.params.routing)
    try:
        assert store.rollout().history[-1].event == "abort", "the control: the earlier abort is still stored"
    finally:
        store.close()
    assert unmet(run_check(3, ctx)) == [
        "a canary was started for the planted bad challenger",
        "the controller aborted it on a metric",
        "the challenger is marked rejected with that reason",
        "the canary weight is back to 0",
        "the champion is unchanged",
    ]


def test_lab4_the_only_accepted_decision_is_the_one_the_ab_test_supports(ctx: LabContext, service: DemoService) -> None:
    from lab.labs.lab04_ab_test import ANSWERS, ab_outcomes
    from monitoring.ab_stats import decide, horizon
    from pipelines.registry import current_aliases
    from serving.log_reader import labelled_window

    started = datetime.now(UTC)
    run_setup(4, ctx)
    service.refresh()
    service.route(strategy="ab", ab_split=0.5)
    planned = horizon(ctx.params.monitoring.ab_test)
    peek = send(service, 60, seed=0)
    early = run_check(4, ctx, "wait")
    assert unmet(early) == [f"{planned} labels per arm (the planned sample)"], early
    picture = ctx.settings.reports_dir / "lab04" / "ab-interval.png"  # the check draws what it judged
    assert picture.read_bytes()[:4] == b"\x89PNG"
    assert str(picture) in early[-1].detail
    later = send(service, 1000, seed=1, users=1000)
    assert min(sum(r.arms[arm].labelled for r in (peek, later)) for arm in ("champion", "challenger")) >= planned
    service.flush()
    aliases = current_aliases(ctx.settings)
    frame = labelled_window(ctx.settings.prediction_log_uri, model_name=ctx.settings.model_name, since=started)
    a, b = ab_outcomes(frame, aliases["champion"], aliases["challenger"], planned)
    assert a.labelled == b.labelled == planned  # the test uses exactly the first labels per arm
    expected = ANSWERS[decide(a, b, ctx.params.monitoring.ab_test).verdict]
    assert expected in ("ship", "keep")  # at the horizon there is a verdict
    accepted = [answer for answer in ("ship", "keep", "wait") if not unmet(run_check(4, ctx, answer))]
    assert accepted == [expected]
    wrong = run_check(4, ctx, "maybe")
    assert unmet(wrong) == ["your decision is the one the statistics support"]
    assert "answer ship, keep or wait" in wrong[-1].hint


def test_lab5_the_bandit_phase_loses_fewer_answers_than_the_split(ctx: LabContext, service: DemoService) -> None:
    run_setup(5, ctx)
    service.refresh()
    service.route(strategy="bandit")
    # Between rounds the "pause" is one poll of the service, so each round's rewards steer the next round.
    bandit = send(service, 400, seed=0, users=400, feedback_every=20, pause_s=1.0, sleep=lambda _: service.refresh())
    assert run_check(5, ctx)[2].passed is False  # no A/B phase yet
    service.route(strategy="ab")
    ab = send(service, 400, seed=1, users=400)
    best = max(("champion", "challenger"), key=lambda arm: bandit.arms[arm].correct + ab.arms[arm].correct)
    assert bandit.share(best) > ab.share(best)
    assert unmet(run_check(5, ctx, "bandit")) == []
    assert unmet(run_check(5, ctx, "ab")) == ["your answer: the phase that lost fewer correct answers"]


def test_lab6_drift_fires_and_a_guarded_retrain_starts_a_canary(ctx: LabContext, service: DemoService) -> None:
    from flows.monitoring_flow import monitoring_flow

    run_setup(6, ctx)
    service.refresh()
    send(service, 500, seed=0, kind="covariate-shift")
    service.flush()
    assert len(unmet(run_check(6, ctx))) == 5
    outcome = monitoring_flow(ctx.settings, ctx.params)
    assert outcome.retrain is not None
    assert outcome.retrain.status == "started-canary", outcome.retrain
    checks = run_check(6, ctx)
    assert unmet(checks) == [], checks
