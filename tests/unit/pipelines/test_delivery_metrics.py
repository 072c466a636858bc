"""Delivery figures from a scripted audit trail: every figure follows from the script's own times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipelines.audit import AuditEntry
from pipelines.delivery_metrics import delivery_metrics

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


class Trail:
    """Builds audit entries the way pipelines.registry writes them, at scripted times."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def add(self, at: datetime, action: str, alias: str, from_v: str | None, to_v: str | None) -> None:
        ts = at.isoformat(timespec="seconds")
        self.entries.append(AuditEntry(len(self.entries) + 1, ts, "tester", action, alias, from_v, to_v, "scripted"))

    def first(self, at: datetime, v: str) -> None:
        self.add(at, "register", "champion", None, v)

    def challenger(self, at: datetime, v: str) -> None:
        self.add(at, "register", "challenger", None, v)

    def promote(self, at: datetime, old: str, v: str) -> None:
        self.add(at, "promote", "previous", None, old)
        self.add(at, "promote", "champion", old, v)
        self.add(at, "promote", "challenger", v, None)

    def reject(self, at: datetime, v: str) -> None:
        self.add(at, "reject", "challenger", v, v)

    def rollback(self, at: datetime, bad: str, back: str) -> None:
        self.add(at, "rollback", "champion", bad, back)
        self.add(at, "rollback", "previous", back, None)


def test_each_figure_follows_from_a_scripted_history() -> None:
    t = Trail()
    t.first(T0, "1")
    alarm = T0 + 24 * H  # data drift fires; the retrain registers v2 two hours later
    t.challenger(alarm + 2 * H, "2")
    v2_promoted = alarm + 6 * H
    t.promote(v2_promoted, "1", "2")
    v3_registered = T0 + 48 * H  # a manual retrain: no alarm since v2 went out
    t.challenger(v3_registered, "3")
    v3_aborted = v3_registered + 3 * H
    t.reject(v3_aborted, "3")
    v4_registered = T0 + 72 * H
    t.challenger(v4_registered, "4")
    v4_promoted = v4_registered + 4 * H
    t.promote(v4_promoted, "2", "4")
    late_alarm = v4_promoted + H  # after the promotion: it cannot be v4's trigger
    v4_rolled_back = v4_promoted + 6 * H
    t.rollback(v4_rolled_back, "4", "2")
    now = T0 + 7 * 24 * H

    m = delivery_metrics(t.entries, [alarm, late_alarm], now)

    assert m.window_days == pytest.approx((now - T0) / (24 * H))
    assert m.deployments == 3  # v1 (first champion), v2, v4; the rollback is not a deployment
    assert m.per_day == pytest.approx(3 / m.window_days)
    assert m.per_week == pytest.approx(7 * 3 / m.window_days)
    assert [(x.version, x.since) for x in m.lead_times] == [("2", "trigger"), ("4", "registration")]
    assert [x.seconds for x in m.lead_times] == [(v2_promoted - alarm).total_seconds(), (4 * H).total_seconds()]
    assert m.median_lead_time_s == pytest.approx(((v2_promoted - alarm) + 4 * H).total_seconds() / 2)
    assert (m.aborts, m.rollbacks, m.attempts) == (1, 1, 4)
    assert m.change_failure_rate == pytest.approx(2 / 4)
    assert [(r.version, r.kind, r.seconds) for r in m.restores] == [
        ("3", "abort", (v3_aborted - v3_registered).total_seconds()),
        ("4", "rollback", (v4_rolled_back - v4_promoted).total_seconds()),
    ]


def test_an_alarm_before_the_last_champion_change_is_not_the_next_promotion_s_trigger() -> None:
    t = Trail()
    old_alarm = T0 - H
    t.first(T0, "1")
    t.challenger(T0 + 5 * H, "2")
    t.promote(T0 + 8 * H, "1", "2")
    m = delivery_metrics(t.entries, [old_alarm], T0 + 24 * H)
    assert [(x.since, x.seconds) for x in m.lead_times] == [("registration", (3 * H).total_seconds())]


def test_the_first_of_several_alarms_starts_the_lead_time() -> None:
    t = Trail()
    t.first(T0, "1")
    first, second = T0 + 2 * H, T0 + 3 * H
    t.challenger(T0 + 4 * H, "2")
    t.promote(T0 + 5 * H, "1", "2")
    m = delivery_metrics(t.entries, [second, first], T0 + 24 * H)
    assert m.lead_times[0].seconds == (3 * H).total_seconds()


def test_rejecting_the_same_challenger_twice_is_one_failure() -> None:
    t = Trail()
    t.first(T0, "1")
    t.challenger(T0 + H, "2")
    t.reject(T0 + 2 * H, "2")
    t.reject(T0 + 3 * H, "2")
    m = delivery_metrics(t.entries, [], T0 + 24 * H)
    assert (m.aborts, m.attempts, m.change_failure_rate) == (1, 2, 0.5)


def test_an_empty_log_has_no_figures() -> None:
    m = delivery_metrics([], [], T0)
    assert (m.deployments, m.per_day, m.change_failure_rate, m.median_lead_time_s, m.median_restore_s) == (
        0,
        None,
        None,
        None,
        None,
    )
