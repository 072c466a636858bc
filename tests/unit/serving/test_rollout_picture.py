"""The rollout picture is drawn from the rollout's history: the plotted steps and verdicts are the recorded ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from serving.canary_analysis import ArmMetrics, analyse
from serving.rollout import RolloutState, abort, advance, pause, resume, start
from serving.rollout_picture import VerdictMark, WeightSeries, weight_series, write_rollout_picture
from tests.unit.serving.test_rollout import CHAMPION, PASS, T0, P  # the same plan and arms as the rollout tests

WAIT = analyse(CHAMPION, ArmMetrics(), P)
BREACH = analyse(CHAMPION, ArmMetrics(requests=400, errors=40, p99_ms=90.0, labelled=100, correct=94), P)


def _minutes(i: int) -> datetime:
    return T0 + timedelta(minutes=i, seconds=7 * i)


def promoted() -> RolloutState:
    """10 % -> wait twice -> 25 % -> pause/resume -> 50 % -> 100 % -> promote."""
    state, _ = start("7", P, T0)
    for i, analysis in enumerate([WAIT, WAIT, PASS, PASS, PASS, PASS], start=1):
        if i == 4:
            state, _ = pause(state, _minutes(30), "look at the logs")
            state, _ = resume(state, _minutes(31))
        state, _ = advance(state, analysis, P, _minutes(i if i < 4 else 30 + i))
    return state


def aborted() -> RolloutState:
    state, _ = start("8", P, T0)
    state, _ = advance(state, PASS, P, _minutes(1))
    state, _ = advance(state, BREACH, P, _minutes(2))
    return state


def test_the_series_is_the_history_weights_and_a_mark_per_analysis_at_the_weight_it_judged() -> None:
    state = promoted()
    series = weight_series(state)
    assert series.times == tuple(e.at for e in state.history)
    assert series.weights == (0.10, 0.10, 0.25, 0.25, 0.25, 0.50, 1.0, 0.0)  # start wait step pause resume ...
    assert [(m.mark, m.weight, m.repeats) for m in series.marks] == [
        ("hold", 0.10, 2),  # two waits at 10 %, one history entry
        ("pass", 0.10, 1),
        ("pass", 0.25, 1),
        ("pass", 0.50, 1),
        ("promote", 1.0, 1),
    ]
    assert series.marks[-1].reason.startswith("all steps passed")
    rolled_back = weight_series(aborted())
    assert [(m.mark, m.weight) for m in rolled_back.marks] == [("pass", 0.10), ("rollback", 0.25)]
    assert "BREACH" in rolled_back.marks[-1].reason
    assert rolled_back.weights[-1] == 0.0


def _close(a: WeightSeries, b: WeightSeries) -> None:
    """Equal series, times to the millisecond (matplotlib keeps dates as float days)."""
    assert len(a.times) == len(b.times)
    assert len(a.marks) == len(b.marks)
    assert all(abs((x - y).total_seconds()) < 1e-3 for x, y in zip(a.times, b.times, strict=True))
    assert a.weights == pytest.approx(b.weights)

    def key(m: VerdictMark) -> tuple[str, float, str, int]:
        return (m.mark, round(m.weight, 9), m.reason, m.repeats)

    assert sorted(map(key, a.marks)) == sorted(map(key, b.marks))
    assert all(
        abs((x.at - y.at).total_seconds()) < 1e-3
        for x, y in zip(sorted(a.marks, key=key), sorted(b.marks, key=key), strict=True)
    )


@pytest.mark.parametrize("build", [promoted, aborted])
def test_the_picture_plots_exactly_the_history(build, tmp_path: Path) -> None:
    state = build()
    out = tmp_path / "reports" / "rollout" / "weights.png"
    plotted = write_rollout_picture(state, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _close(plotted, weight_series(state))


def test_no_history_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rollout start"):
        write_rollout_picture(RolloutState(), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_an_operator_abort_is_a_rollback_mark_with_its_reason() -> None:
    state, _ = start("9", P, T0)
    state, _ = abort(state, _minutes(1), "pager says no")
    assert weight_series(state).marks == (VerdictMark(_minutes(1), 0.10, "rollback", "pager says no"),)
