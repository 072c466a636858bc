"""Canary analysis and the rollout state machine: too little data never passes, breaches abort, steps promote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core.params import RolloutParams
from serving.canary_analysis import Analysis, ArmMetrics, Check, accuracy_test, analyse
from serving.rollout import (
    RolloutState,
    RolloutTransitionError,
    Window,
    abort,
    advance,
    analysis_windows,
    approve,
    pause,
    resume,
    start,
)

# Written out (not read from params.yaml) so an edit to the file cannot silently change what is tested.
P = RolloutParams(
    steps=[10, 25, 50, 100],
    min_requests=200,
    min_feedback=50,
    max_error_rate=0.02,
    max_error_rate_increase=0.01,
    max_p99_latency_ms=500.0,
    accuracy_margin=0.01,
    accuracy_alpha=0.05,
)
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
CHAMPION = ArmMetrics(requests=1000, errors=5, p99_ms=80.0, labelled=200, correct=186)  # 0.5 % errors, 93 %
GOOD = ArmMetrics(requests=400, errors=2, p99_ms=90.0, labelled=100, correct=94)  # 0.5 % errors, 94 %
PASS = analyse(CHAMPION, GOOD, P)
WAIT = analyse(CHAMPION, ArmMetrics(), P)
BREACH = analyse(CHAMPION, ArmMetrics(requests=400, errors=40, p99_ms=90.0, labelled=100, correct=94), P)


def _by_name(analysis: Analysis) -> dict[str, Check]:
    return {c.name: c for c in analysis.checks}


def _running(steps_passed: int = 0) -> RolloutState:
    state, _ = start("7", P, T0)
    for i in range(steps_passed):
        state, _ = advance(state, PASS, P, T0 + timedelta(minutes=i + 1))
    return state


# ---- ArmMetrics helpers ----------------------------------------------------------------------------------


def test_arm_helpers_compute_rates_and_numpy_p99() -> None:
    latencies = [float(x) for x in range(1, 101)]
    arm = ArmMetrics(requests=200, errors=3, latencies_ms=latencies, labelled=40, correct=30)
    assert arm.error_rate == pytest.approx(0.015)
    assert arm.p99 == pytest.approx(float(np.percentile(latencies, 99)))
    assert arm.online_accuracy == pytest.approx(0.75)
    assert ArmMetrics(requests=10, p99_ms=42.0).p99 == 42.0


def test_arm_helpers_give_none_without_data() -> None:
    empty = ArmMetrics()
    assert (empty.error_rate, empty.p99, empty.online_accuracy) == (None, None, None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"requests": 5, "errors": 6}, "errors must be <= requests"),
        ({"labelled": 5, "correct": 6}, "correct <= labelled"),
        ({"requests": -1}, "non-negative"),
        ({"requests": 5, "latencies_ms": [1.0], "p99_ms": 1.0}, "not both"),
    ],
    ids=["errors-over-requests", "correct-over-labelled", "negative", "latencies-and-p99"],
)
def test_inconsistent_arm_metrics_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ArmMetrics(**kwargs)  # type: ignore[arg-type]


# ---- analysis: the inconclusive trap -------------------------------------------------------------------


def test_empty_metrics_are_inconclusive_never_a_pass() -> None:
    analysis = analyse(ArmMetrics(), ArmMetrics(), P)
    assert analysis.verdict == "inconclusive"
    assert {c.status for c in analysis.checks} == {"inconclusive"}
    assert "challenger has 0 requests, need 200" in analysis.summary()


def test_a_silent_challenger_next_to_a_busy_champion_is_inconclusive() -> None:
    assert WAIT.verdict == "inconclusive"
    assert _by_name(WAIT)["error_rate"].reason == "error_rate: challenger has 0 requests, need 200"


@pytest.mark.parametrize(
    ("challenger", "check"),
    [
        (ArmMetrics(requests=199, p99_ms=10.0, labelled=100, correct=100), "error_rate"),
        (ArmMetrics(requests=199, p99_ms=10.0, labelled=100, correct=100), "p99_latency"),
        (ArmMetrics(requests=400, p99_ms=10.0, labelled=49, correct=49), "online_accuracy"),
        (ArmMetrics(requests=400, labelled=100, correct=100), "p99_latency"),  # requests but no latency samples
    ],
    ids=["199-requests-error-rate", "199-requests-p99", "49-labels-accuracy", "no-latency-samples"],
)
def test_too_few_samples_never_pass_even_when_perfect(challenger: ArmMetrics, check: str) -> None:
    analysis = analyse(CHAMPION, challenger, P)
    assert analysis.verdict == "inconclusive"
    assert _by_name(analysis)[check].status == "inconclusive"


def test_comparative_checks_need_a_champion_sample_too() -> None:
    analysis = analyse(ArmMetrics(requests=150, labelled=10, correct=10), GOOD, P)
    checks = _by_name(analysis)
    assert analysis.verdict == "inconclusive"
    assert checks["error_rate"].status == "pass"  # absolute checks only need the challenger
    assert checks["error_rate_increase"].reason == "error_rate_increase: champion has 150 requests, need 200"
    assert checks["online_accuracy"].reason == "online_accuracy: champion has 10 labelled predictions, need 50"


def test_a_tiny_all_error_sample_is_inconclusive_not_a_breach() -> None:
    # Decided: the minimum sample applies to breaches too, so 3 unlucky requests cannot abort a rollout.
    assert analyse(CHAMPION, ArmMetrics(requests=3, errors=3, p99_ms=10.0), P).verdict == "inconclusive"


# ---- analysis: breaches and passes ---------------------------------------------------------------------


def test_high_error_rate_breaches_with_numbers() -> None:
    checks = _by_name(BREACH)
    assert BREACH.verdict == "breach"
    assert checks["error_rate"].status == "breach"
    assert "40/400 = 10.00%, max 2.00%" in checks["error_rate"].reason
    assert checks["error_rate_increase"].status == "breach"
    assert {checks["p99_latency"].status, checks["online_accuracy"].status} == {"pass"}


def test_error_rate_increase_over_the_champion_breaches_below_the_absolute_cap() -> None:
    champion = ArmMetrics(requests=1000, errors=0, p99_ms=80.0, labelled=200, correct=186)
    challenger = ArmMetrics(requests=200, errors=3, p99_ms=80.0, labelled=100, correct=94)  # 1.5 %: under the 2 % cap
    checks = _by_name(analyse(champion, challenger, P))
    assert checks["error_rate"].status == "pass"
    assert checks["error_rate_increase"].status == "breach"
    assert "+1.50 pts" in checks["error_rate_increase"].reason


def test_slow_challenger_breaches_on_p99() -> None:
    latencies = [50.0] * 380 + [900.0] * 20  # 5 % slow requests put the p99 at 900 ms
    analysis = analyse(
        CHAMPION, ArmMetrics(requests=400, errors=2, latencies_ms=latencies, labelled=100, correct=94), P
    )
    assert analysis.verdict == "breach"
    assert analysis.reasons == ["p99_latency: challenger 900.0 ms, max 500.0 ms (BREACH of limit)"]


def test_less_accurate_challenger_breaches_on_online_accuracy() -> None:
    analysis = analyse(CHAMPION, ArmMetrics(requests=400, errors=2, p99_ms=90.0, labelled=100, correct=80), P)
    check = _by_name(analysis)["online_accuracy"]
    assert analysis.verdict == "breach"
    assert check.status == "breach"
    assert "80/100 = 80.00% vs champion 186/200 = 93.00%: difference -13.00 pts, 95 % upper bound" in check.reason
    assert "vs margin -1.00 (harm beyond the margin: BREACH)" in check.reason
    _, upper = accuracy_test(80, 100, 186, 200, margin=0.01, alpha=0.05)
    assert check.observed == pytest.approx(float(upper))
    assert -0.13 < check.observed < -0.01  # the bound sits between the observed drop and the margin


@pytest.mark.parametrize("labels", [100, 2000])
def test_the_accuracy_verdict_is_a_test_so_the_same_point_estimates_decide_differently_by_sample_size(
    labels: int,
) -> None:
    """90 % vs 84 %: a 6-point drop. Any rule on point estimates alone gives one verdict for both sizes."""
    champion = ArmMetrics(labelled=labels, correct=90 * labels // 100)
    challenger = ArmMetrics(labelled=labels, correct=84 * labels // 100)
    check = _by_name(analyse(champion, challenger, P))["online_accuracy"]
    assert check.status == ("pass" if labels == 100 else "breach"), check.reason  # 100 labels: within noise


def test_a_drop_smaller_than_the_margin_never_breaches_however_many_labels() -> None:
    champion, challenger = ArmMetrics(labelled=100_000, correct=95_000), ArmMetrics(labelled=100_000, correct=94_500)
    check = _by_name(analyse(champion, challenger, P))["online_accuracy"]  # 0.5 points worse, margin 1 point
    assert check.status == "pass"
    assert check.observed is not None
    assert check.observed > -P.accuracy_margin


def test_the_accuracy_test_is_vectorised_and_equal_to_its_scalar_calls() -> None:
    chall, champ = np.array([180, 190, 200, 0]), np.array([190, 190, 150, 200])
    breach, upper = accuracy_test(chall, 200, champ, 200, margin=0.01, alpha=0.05)
    scalar = [accuracy_test(int(c), 200, int(k), 200, margin=0.01, alpha=0.05) for c, k in zip(chall, champ)]
    assert breach.tolist() == [bool(b) for b, _ in scalar] == [False, False, False, True]
    assert upper.tolist() == pytest.approx([float(u) for _, u in scalar])
    with pytest.raises(ValueError, match="alpha"):
        accuracy_test(1, 2, 1, 2, margin=0.0, alpha=0.5)


def test_a_far_worse_challenger_gets_no_accuracy_verdict_before_min_feedback() -> None:
    champion = ArmMetrics(requests=400, p99_ms=10.0, labelled=P.min_feedback, correct=P.min_feedback)
    almost = ArmMetrics(requests=400, p99_ms=10.0, labelled=P.min_feedback - 1, correct=0)
    check = _by_name(analyse(champion, almost, P))["online_accuracy"]
    assert (check.status, check.reason) == (
        "inconclusive",
        "online_accuracy: challenger has 49 labelled predictions, need 50",
    )
    enough = ArmMetrics(requests=400, p99_ms=10.0, labelled=P.min_feedback, correct=0)
    assert _by_name(analyse(champion, enough, P))["online_accuracy"].status == "breach"


def test_a_breach_wins_over_inconclusive_checks() -> None:
    analysis = analyse(CHAMPION, ArmMetrics(requests=200, errors=20, p99_ms=90.0), P)  # no feedback yet
    assert analysis.verdict == "breach"
    assert _by_name(analysis)["online_accuracy"].status == "inconclusive"
    assert analysis.reasons == [c.reason for c in analysis.checks if c.status == "breach"]


def test_a_good_challenger_passes_every_check() -> None:
    assert PASS.verdict == "pass"
    assert {c.status for c in PASS.checks} == {"pass"}
    assert len(PASS.reasons) == 4


@pytest.mark.parametrize(
    ("champion", "challenger", "check", "status"),
    [
        # error rate cap 2 %: 4/200 is exactly 2 % -> pass, 5/200 -> breach
        (CHAMPION, ArmMetrics(requests=200, errors=4), "error_rate", "pass"),
        (CHAMPION, ArmMetrics(requests=200, errors=5), "error_rate", "breach"),
        # increase cap +1 pt: 1 % -> 2 % is exactly +1 pt -> pass; 1 % -> 2.5 % -> breach
        (ArmMetrics(requests=200, errors=2), ArmMetrics(requests=200, errors=4), "error_rate_increase", "pass"),
        (ArmMetrics(requests=200, errors=2), ArmMetrics(requests=200, errors=5), "error_rate_increase", "breach"),
        # p99 cap 500 ms, inclusive
        (CHAMPION, ArmMetrics(requests=200, p99_ms=500.0), "p99_latency", "pass"),
        (CHAMPION, ArmMetrics(requests=200, p99_ms=500.1), "p99_latency", "breach"),
        # sample minimums are inclusive: exactly min_requests / min_feedback decides
        (CHAMPION, ArmMetrics(requests=200, errors=0, p99_ms=1.0), "p99_latency", "pass"),
        (ArmMetrics(labelled=50, correct=50), ArmMetrics(labelled=50, correct=50), "online_accuracy", "pass"),
    ],
    ids=[
        "error-rate-at-cap",
        "error-rate-over-cap",
        "increase-at-cap",
        "increase-over-cap",
        "p99-at-cap",
        "p99-over-cap",
        "exactly-min-requests",
        "exactly-min-feedback",
    ],
)
def test_values_exactly_at_a_limit_pass_and_just_beyond_breach(
    champion: ArmMetrics, challenger: ArmMetrics, check: str, status: str
) -> None:
    assert _by_name(analyse(champion, challenger, P))[check].status == status


# ---- state machine -------------------------------------------------------------------------------------


def test_start_sets_the_first_step_weight() -> None:
    state, action = start("7", P, T0, actor="alice")
    assert (state.status, state.step_index, state.weight, state.challenger_version) == ("running", 0, 0.10, "7")
    assert (action.kind, action.weight) == ("set_weight", 0.10)
    assert state.started_at == state.step_started_at == T0
    assert [(e.event, e.actor) for e in state.history] == [("start", "alice")]


def test_passing_every_step_walks_the_schedule_then_promotes() -> None:
    state, _ = start("7", P, T0)
    actions = []
    for minute in range(1, 5):
        state, action = advance(state, PASS, P, T0 + timedelta(minutes=minute))
        actions.append((action.kind, action.weight))
    assert actions == [("set_weight", 0.25), ("set_weight", 0.5), ("set_weight", 1.0), ("promote", 0.0)]
    assert (state.status, state.weight) == ("promoted", 0.0)
    assert [e.event for e in state.history] == ["start", "step", "step", "step", "promote"]
    assert state.step_started_at == T0 + timedelta(minutes=3)  # when the 100 % step began


def test_inconclusive_waits_at_the_same_weight_and_collapses_repeated_waits() -> None:
    before = _running(1)
    state, action = advance(before, WAIT, P, T0 + timedelta(hours=1))
    state, action = advance(state, WAIT, P, T0 + timedelta(hours=2))
    assert (action.kind, action.weight) == ("wait", None)
    assert "need 200" in action.reason
    assert (state.status, state.step_index, state.weight) == ("running", 1, 0.25)
    assert state.step_started_at == before.step_started_at
    assert (state.history[-1].event, state.history[-1].repeats) == ("wait", 2)
    assert len(state.history) == len(before.history) + 1
    assert before.history[-1].event == "step"  # the input state was not modified


def test_breach_aborts_to_weight_zero_with_the_reason() -> None:
    state, action = advance(_running(2), BREACH, P, T0 + timedelta(hours=1))
    assert (action.kind, action.weight) == ("abort", 0.0)
    assert (state.status, state.weight) == ("aborted", 0.0)
    assert "at 50 %" in action.reason
    assert "40/400 = 10.00%" in action.reason
    assert state.history[-1].reason == action.reason


def test_operator_abort_sets_weight_zero_and_records_reason_and_actor() -> None:
    state, action = abort(_running(1), T0 + timedelta(hours=1), "customer complaints", actor="bob")
    assert (action.kind, action.weight, action.reason) == ("abort", 0.0, "customer complaints")
    assert (state.status, state.weight) == ("aborted", 0.0)
    last = state.history[-1]
    assert (last.event, last.reason, last.actor, last.weight) == ("abort", "customer complaints", "bob", 0.0)
    with pytest.raises(ValueError, match="needs a reason"):
        abort(_running(), T0, "  ")


def test_pause_holds_the_weight_until_resume() -> None:
    paused, action = pause(_running(1), T0 + timedelta(hours=1), "investigating", actor="carol")
    assert (paused.status, paused.weight, action.kind) == ("paused", 0.25, "wait")
    held, action = advance(paused, PASS, P, T0 + timedelta(hours=2))
    assert (held.status, held.weight, action.kind) == ("paused", 0.25, "wait")
    resumed, _ = resume(held, T0 + timedelta(hours=3))
    stepped, action = advance(resumed, PASS, P, T0 + timedelta(hours=4))
    assert (stepped.status, stepped.weight, action.kind, action.weight) == ("running", 0.5, "set_weight", 0.5)
    assert [e.event for e in stepped.history][-4:] == ["pause", "wait", "resume", "step"]


def test_a_breach_still_aborts_a_paused_rollout() -> None:
    paused, _ = pause(_running(1), T0)
    state, action = advance(paused, BREACH, P, T0 + timedelta(hours=1))
    assert (state.status, action.kind, action.weight) == ("aborted", "abort", 0.0)


@pytest.mark.parametrize(
    ("state", "operation", "message"),
    [
        (RolloutState(), lambda s: advance(s, PASS, P, T0), "cannot advance a rollout that is idle"),
        (abort(_running(), T0, "bad")[0], lambda s: advance(s, PASS, P, T0), "start a new rollout"),
        (advance(_running(3), PASS, P, T0)[0], lambda s: abort(s, T0, "late"), "that is promoted"),
        (_running(), lambda s: resume(s, T0), "cannot resume a rollout that is running"),
        (pause(_running(), T0)[0], lambda s: pause(s, T0), "it is paused; resume it first"),
        (_running(), lambda s: start("8", P, T0, current=s), "cannot start over a rollout that is running"),
    ],
    ids=["advance-idle", "advance-aborted", "abort-promoted", "resume-running", "pause-paused", "start-over-running"],
)
def test_invalid_transitions_raise_a_clear_error(state: RolloutState, operation: object, message: str) -> None:
    with pytest.raises(RolloutTransitionError, match=message):
        operation(state)  # type: ignore[operator]


def test_a_new_rollout_may_start_after_the_last_one_finished() -> None:
    finished, _ = abort(_running(), T0, "bad")
    state, action = start("8", P, T0 + timedelta(days=1), current=finished)
    assert (state.challenger_version, state.weight, len(state.history), action.weight) == ("8", 0.1, 1, 0.1)


def test_a_schedule_edited_mid_rollout_still_moves_forward() -> None:
    state, action = advance(_running(1), PASS, RolloutParams(steps=[20, 60]), T0)  # currently at 25 %
    assert (state.step_index, state.weight, action.weight) == (1, 0.6, 0.6)


def test_both_arms_are_measured_over_the_current_step_below_100_percent() -> None:
    for steps_passed in range(3):  # 10, 25, 50 %
        state = _running(steps_passed)
        windows = analysis_windows(state)
        assert windows.champion == windows.challenger == Window(state.step_started_at)
    assert analysis_windows(_running(1)).champion == Window(T0 + timedelta(minutes=1))  # not the rollout's start


def test_at_100_percent_the_champion_baseline_is_its_window_of_the_previous_step() -> None:
    state = _running(3)  # stepped 10 -> 25 at minute 1, -> 50 at minute 2, -> 100 at minute 3
    assert state.weight == 1.0
    windows = analysis_windows(state)
    assert windows.challenger == Window(T0 + timedelta(minutes=3))
    assert windows.champion == Window(T0 + timedelta(minutes=2), T0 + timedelta(minutes=3))
    legacy = RolloutState.from_dict({k: v for k, v in state.to_dict().items() if k != "previous_step_started_at"})
    empty = analysis_windows(legacy).champion  # a state saved before the field existed: no baseline, no verdict
    assert empty.since == empty.until == T0 + timedelta(minutes=3)


def test_a_plan_of_only_100_percent_is_refused_for_want_of_a_baseline() -> None:
    with pytest.raises(ValueError, match="no shared step"):
        RolloutParams(steps=[100])


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        start("7", P, datetime(2025, 1, 1))


@pytest.mark.parametrize(
    "state",
    [RolloutState(), _running(), advance(pause(_running(2), T0)[0], WAIT, P, T0 + timedelta(seconds=1))[0]],
    ids=["idle", "running", "paused-with-history"],
)
def test_state_survives_a_json_round_trip(state: RolloutState) -> None:
    text = state.to_json()
    assert RolloutState.from_json(text) == state
    assert RolloutState.from_dict(state.to_dict()) == state


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(status="exploded"),
        lambda d: d.pop("weight"),
        lambda d: d.update(started_at="yesterday"),
    ],
    ids=["unknown-status", "missing-weight", "bad-timestamp"],
)
def test_corrupt_state_is_rejected_with_a_fix(mutate: object) -> None:
    data = _running().to_dict()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(ValueError, match="delete it to reset to idle"):
        RolloutState.from_dict(data)


# ---- production mode: approval after the last step (C60) --------------------------------------------------


def test_in_production_mode_the_last_pass_asks_for_approval_and_holds_the_weight() -> None:
    state = _running(steps_passed=3)  # at 100 %
    asked, action = advance(state, PASS, P, T0 + timedelta(hours=1), approval_required=True)
    assert (asked.status, asked.weight, action.kind, action.weight) == (
        "awaiting_approval",
        1.0,
        "request_approval",
        None,
    )
    assert asked.history[-1].event == "request_approval"
    waiting, action = advance(asked, PASS, P, T0 + timedelta(hours=2), approval_required=True)
    assert (waiting.status, waiting.weight, action.kind) == ("awaiting_approval", 1.0, "wait")  # never promotes
    assert "awaiting a person's approval" in action.reason
    done, action = approve(waiting, T0 + timedelta(hours=3), "reviewed", actor="bob")
    assert (done.status, done.weight, action.kind, done.history[-1].actor) == ("promoted", 0.0, "promote", "bob")


def test_a_breach_still_aborts_a_rollout_awaiting_approval_and_so_does_a_rejection() -> None:
    asked, _ = advance(_running(steps_passed=3), PASS, P, T0 + timedelta(hours=1), approval_required=True)
    breached, action = advance(asked, BREACH, P, T0 + timedelta(hours=2), approval_required=True)
    assert (breached.status, breached.weight, action.kind) == ("aborted", 0.0, "abort")
    rejected, action = abort(asked, T0 + timedelta(hours=2), "not fair enough", actor="bob")
    assert (rejected.status, rejected.weight, action.kind) == ("aborted", 0.0, "abort")
    with pytest.raises(RolloutTransitionError, match="awaits a person's approval"):
        pause(asked, T0 + timedelta(hours=2))
    with pytest.raises(RolloutTransitionError, match="cannot approve a rollout that is running"):
        approve(_running(steps_passed=1), T0, "too early", actor="bob")
    assert RolloutState.from_json(asked.to_json()) == asked
