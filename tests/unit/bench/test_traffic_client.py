"""The traffic client of `mlops-lab traffic` and the labs: the pure parts, with a scripted transport, no server."""

from __future__ import annotations

from typing import Any

import pytest

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
            token = {"feedback_token": f"token-of-r{n}"}
            return Reply(200, {**body_out, **token, "predictions": [{"id": f"r{n}", "class": answer}]})
        if path == "/v1/feedback":
            assert body is not None
            if headers.get("X-Feedback-Token") != f"token-of-{body['request_id']}":  # as the service checks it
                return Reply(403, {"error": "feedback: wrong X-Feedback-Token"})
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
    report = send_traffic(
        service, rows(3), user_pool(2), feedback=False, arm="challenger", admin_auth="workshop-admin-test-token"
    )
    assert report.feedback == {}
    predictions = [h for _, p, _, h in service.calls if p == "/v1/predict"]
    assert all(h["X-Force-Arm"] == "challenger" for h in predictions)
    assert all(h["Authorization"] == "Bearer workshop-admin-test-token" for h in predictions)  # operators only


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


def test_a_rows_group_goes_into_its_body_when_the_data_has_the_group_column(params, iris_frame) -> None:
    column = params.dataset.group_column
    sites = iris_frame.head(3).assign(**{column: ["site-a", None, "site-b"]})
    bodies = [r.features for r in frame_rows(sites, params)]
    assert [b.get(column) for b in bodies] == ["site-a", None, "site-b"]
    assert all(set(b) - {column} == set(params.dataset.feature_names) for b in bodies)


def test_batch_rows_come_from_the_batch_generator(params, iris_frame) -> None:
    from bench.traffic_client import batch_rows

    shifted = batch_rows("covariate-shift", iris_frame, params, 50, seed=3)
    clean = batch_rows("clean", iris_frame, params, 50, seed=3)
    assert len(shifted) == 50
    assert all(r.label in params.dataset.classes for r in shifted)
    mean = lambda rs: sum(r.features["sepal_width"] for r in rs) / len(rs)  # noqa: E731
    assert mean(shifted) != pytest.approx(mean(clean), abs=0.05)
    assert user_pool(3) == ["user-0000", "user-0001", "user-0002"]
