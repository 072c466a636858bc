"""Labs 3-6 and the traffic client: the pure parts, with a scripted transport instead of a server."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.traffic_client import (
    LabelledRow,
    Reply,
    ServiceUnreachableError,
    check_ready,
    frame_rows,
    send_traffic,
    user_pool,
)


class ScriptedService:
    """A transport that answers like the service: arm by user id, a fixed class, feedback recorded."""

    def __init__(self, *, limited: int = 0, down_after: int | None = None) -> None:
        self.calls: list[tuple[str, str, dict[str, Any] | None, dict[str, str]]] = []
        self.limited = limited  # answer this many 429s first
        self.down_after = down_after  # raise ConnectionRefusedError after this many predictions

    def request(self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]) -> Reply:
        self.calls.append((method, path, body, headers))
        if self.limited:
            self.limited -= 1
            return Reply(429, {"error": "rate limit exceeded"}, 2.0)
        if path == "/v1/predict":
            n = sum(p == "/v1/predict" for _, p, _, _ in self.calls)
            if self.down_after is not None and n > self.down_after:
                raise ConnectionRefusedError("connection refused")
            arm = "challenger" if headers["X-User-Id"].endswith(("0", "2")) else "champion"
            version = "2" if arm == "challenger" else "1"
            answer = "setosa" if arm == "champion" else "virginica"
            body_out = {"arm": arm, "model_version": version, "strategy": "canary"}
            return Reply(200, {**body_out, "predictions": [{"id": f"r{n}", "class": answer}]})
        if path == "/v1/feedback":
            assert body is not None
            return Reply(200, {"status": "recorded", "request_id": body["request_id"]})
        return Reply(200, {"ready": True, "models": {"champion": {"version": "1"}}})


def rows(n: int, label: str = "setosa") -> list[LabelledRow]:
    return [LabelledRow({"sepal_length": 5.0 + i / 100}, label) for i in range(n)]


def test_traffic_counts_arms_versions_and_right_answers_and_sends_labels_per_round() -> None:
    service = ScriptedService()
    report = send_traffic(service, rows(10), user_pool(4), feedback_every=4)
    # users 0000..0003 repeat: 0000 and 0002 land on the challenger, whose answers are wrong
    assert report.total == 10
    assert report.arms["challenger"].requests == 5
    assert report.arms["challenger"].correct == 0
    assert report.arms["champion"].requests == 5
    assert report.arms["champion"].accuracy == 1.0
    assert report.arms["champion"].versions == {"1": 5}
    assert report.feedback == {"recorded": 10}
    assert report.failed == 0
    paths = [p for _, p, _, _ in service.calls]
    # rounds of 4: four predictions, then their four labels, before the next round
    assert paths[:8] == ["/v1/predict"] * 4 + ["/v1/feedback"] * 4
    assert paths[8:12] == ["/v1/predict"] * 4


def test_no_feedback_and_a_forced_arm_header() -> None:
    service = ScriptedService()
    report = send_traffic(service, rows(3), user_pool(2), feedback=False, arm="challenger")
    assert report.feedback == {}
    assert all(h["X-Force-Arm"] == "challenger" for _, p, _, h in service.calls if p == "/v1/predict")


def test_a_rate_limited_request_waits_retry_after_and_is_sent_again() -> None:
    waits: list[float] = []
    service = ScriptedService(limited=2)
    report = send_traffic(service, rows(2), user_pool(1), sleep=waits.append)
    assert waits == [2.0, 2.0]
    assert report.total == 2
    assert report.failed == 0


def test_the_time_cap_stops_the_run_and_counts_what_was_not_sent() -> None:
    now = iter(range(100))
    report = send_traffic(
        ScriptedService(), rows(10), user_pool(2), feedback_every=2, max_seconds=1.5, clock=lambda: next(now)
    )
    assert report.total == 2
    assert report.not_sent == 8
    assert "time cap" in report.stopped


def test_a_service_that_goes_away_stops_the_run_after_a_few_connection_errors() -> None:
    report = send_traffic(ScriptedService(down_after=3), rows(20), user_pool(2), feedback_every=50)
    assert report.total == 3
    assert report.failed == 5
    assert report.not_sent == 12
    assert "went away" in report.stopped


class Refusing:
    def request(self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]) -> Reply:
        raise ConnectionRefusedError("connection refused")


def test_an_unreachable_service_names_the_command_that_starts_it() -> None:
    with pytest.raises(ServiceUnreachableError, match=r"mlops-lab serve --port 8799"):
        check_ready(Refusing(), "http://127.0.0.1:8799", 8799)


def test_a_service_without_a_champion_says_to_train_one() -> None:
    class NotReady(ScriptedService):
        def request(self, method: str, path: str, body: Any, headers: dict[str, str]) -> Reply:
            return Reply(503, {"ready": False})

    with pytest.raises(ServiceUnreachableError, match="mlops-lab train"):
        check_ready(NotReady(), "http://127.0.0.1:8799")


def test_rows_of_a_frame_carry_their_label_when_the_target_column_is_there(params, iris_frame) -> None:
    labelled = frame_rows(iris_frame.head(3), params)
    assert labelled[0].label == iris_frame[params.dataset.target].iloc[0]
    assert set(labelled[0].features) == set(params.dataset.feature_names)
    unlabelled = frame_rows(iris_frame.drop(columns=[params.dataset.target]).head(2), params)
    assert [r.label for r in unlabelled] == [None, None]
    with pytest.raises(ValueError, match="sepal_length"):
        frame_rows(iris_frame.drop(columns=["sepal_length"]), params)


def test_batch_rows_come_from_the_batch_generator(params, iris_frame) -> None:
    from bench.traffic_client import batch_rows

    shifted = batch_rows("covariate-shift", iris_frame, params, 50, seed=3)
    clean = batch_rows("clean", iris_frame, params, 50, seed=3)
    assert len(shifted) == 50
    assert all(r.label in params.dataset.classes for r in shifted)
    mean = lambda rs: sum(r.features["sepal_width"] for r in rs) / len(rs)  # noqa: E731
    assert mean(shifted) != pytest.approx(mean(clean), abs=0.05)
    assert user_pool(3) == ["user-0000", "user-0001", "user-0002"]


# ---- lab checkers: pure parts -----------------------------------------------------------------


def test_abort_reasons_name_the_metric_that_breached() -> None:
    from lab.labs.lab03_canary import metric_named

    assert metric_named("analysis at 10 %: breach: online_accuracy: challenger 20/68") == "online_accuracy"
    assert metric_named("analysis at 10 %: breach: error_rate_increase: +3 pts") == "error_rate_increase"
    assert metric_named("operator: looked wrong to me") is None


def ab_frame(*arms: tuple[str, str, str, int, int]) -> pd.DataFrame:
    """(strategy, arm, version, labelled, correct) groups as a labelled_window-like frame."""
    records = []
    for strategy, arm, version, labelled, correct in arms:
        records += [
            {"strategy": strategy, "arm": arm, "model_version": version, "correct": i < correct}
            for i in range(labelled)
        ]
    return pd.DataFrame(records)


def test_ab_outcomes_count_only_ab_rows_of_the_two_versions() -> None:
    from lab.labs.lab04_ab_test import ab_outcomes

    frame = ab_frame(
        ("ab", "champion", "1", 120, 110),
        ("ab", "challenger", "2", 100, 97),
        ("canary", "champion", "1", 50, 0),  # not A/B
        ("ab", "challenger", "9", 40, 0),  # another challenger
    )
    a, b = ab_outcomes(frame, "1", "2")
    assert (a.labelled, a.correct, b.labelled, b.correct) == (120, 110, 100, 97)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((30, 28), (40, 40), "wait"),  # too few labels, whatever it looks like
        ((400, 300), (400, 380), "ship"),  # B clearly better
        ((400, 380), (400, 300), "keep"),  # A clearly better
        ((300, 285), (300, 287), "keep"),  # no significant difference
    ],
)
def test_the_supported_decision_follows_the_ab_test(params, a, b, expected) -> None:
    from lab.labs.lab04_ab_test import ANSWERS, normalise
    from monitoring.ab_stats import ArmOutcome, decide

    verdict = decide(ArmOutcome(*a), ArmOutcome(*b), params.monitoring.ab_test).verdict
    assert ANSWERS[verdict] == expected
    assert normalise(f"  {expected.upper()} ") == expected
    assert normalise(" ") is None


def test_regret_per_phase_uses_pooled_accuracy_and_the_worse_arms_share() -> None:
    from lab.labs.lab05_bandit import arm_accuracy, lower_regret, phase

    frame = ab_frame(
        ("bandit", "champion", "1", 90, 81),
        ("bandit", "challenger", "2", 10, 5),
        ("ab", "champion", "1", 50, 45),
        ("ab", "challenger", "2", 50, 25),
    )
    accuracy = arm_accuracy(frame)
    assert accuracy == {"champion": pytest.approx(0.9), "challenger": pytest.approx(0.5)}
    bandit, ab = phase(frame, "bandit", accuracy), phase(frame, "ab", accuracy)
    assert bandit.better_share == pytest.approx(0.9)
    assert ab.better_share == pytest.approx(0.5)
    assert bandit.regret_per_100 == pytest.approx(0.1 * 0.4 * 100)  # 10 % on the worse arm, 40 pts worse
    assert ab.regret_per_100 == pytest.approx(0.5 * 0.4 * 100)
    assert lower_regret(bandit, ab) == "bandit"
    assert lower_regret(ab, bandit) == "ab"


def test_only_the_retraining_flows_files_count_as_trained_by_the_retrain(tmp_path, make_settings, params) -> None:
    from core.context import LabContext
    from lab.labs.lab06_drift import made_by_retrain

    ctx = LabContext(make_settings(tmp_path / "state"), params)
    assert made_by_retrain(ctx, str(ctx.settings.state / "retrain" / "train-20260101T000000.csv"))
    assert not made_by_retrain(ctx, str(ctx.settings.state / "iris.csv"))
    assert not made_by_retrain(ctx, None)


@pytest.mark.parametrize("number", [3, 4, 5, 6])
def test_lab_show_prints_the_page(number: int) -> None:
    from cli.app import app
    from lab.labs import LABS

    result = CliRunner().invoke(app, ["lab", "show", str(number)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert LABS[number].title in result.output
    assert f"mlops-lab lab check {number}" in result.output
