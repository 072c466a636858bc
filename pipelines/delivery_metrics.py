"""Delivery metrics of the model release process, computed from the registry's audit log.

Concept: measuring what an MLOps setup delivers. The four DORA measures of software delivery carry
over to models once every release decision is recorded, and here it is: each alias move is an
entry in the registry's audit log (``pipelines/audit.py``), and each monitoring check that fired is
a row in the findings history (``core/findings.py``). From those two records alone:

- **deployment frequency**: champion changes that ship a new model (the first registration as
  champion and every promotion; a rollback is not a deployment), per day and per week over the
  window from the first audit entry to ``now``;
- **lead time**: for each promotion, from the first retraining trigger that fired after the previous
  champion change (the alarm that asked for a new model) to the promotion; when no trigger fired
  (a manual retrain) it runs from the challenger's registration, and each figure says which;
- **change-failure rate**: failed changes (canaries aborted, challengers rejected, champions rolled
  back) over attempted changes (deployments plus aborted challengers);
- **time to restore**: how long each failed change was exposed before a healthy champion served
  alone again: for a rollback, from the bad version's promotion to the rollback; for an abort, from
  the challenger's registration to the abort (an upper bound: the canary starts at or after the
  registration, and the audit log does not record the start).

Pure functions over entries and timestamps; reading the records is the caller's job
(``mlops-lab registry delivery``). What this does not measure: the model's value to the business,
which needs the business metric, and incidents that no abort or rollback answered.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pipelines.audit import AuditEntry

CHAMPION, CHALLENGER = "champion", "challenger"
HOUR, DAY = 3600.0, 86400.0


@dataclass(frozen=True)
class LeadTime:
    """One promotion's lead time in seconds and where it was counted from ("trigger" or "registration")."""

    version: str
    seconds: float
    since: str


@dataclass(frozen=True)
class Restore:
    """One failed change: the version, how it failed ("abort" or "rollback") and its exposure in seconds."""

    version: str
    kind: str
    seconds: float


@dataclass(frozen=True)
class DeliveryMetrics:
    """The four delivery figures over one window, with the events they were computed from."""

    window_days: float
    deployments: int
    aborts: int
    rollbacks: int
    lead_times: list[LeadTime] = field(default_factory=list)
    restores: list[Restore] = field(default_factory=list)

    @property
    def per_day(self) -> float | None:
        return self.deployments / self.window_days if self.window_days > 0 else None

    @property
    def per_week(self) -> float | None:
        return None if self.per_day is None else self.per_day * 7

    @property
    def attempts(self) -> int:
        """Changes that went out: every deployment plus every challenger aborted before it was promoted."""
        return self.deployments + self.aborts

    @property
    def change_failure_rate(self) -> float | None:
        return (self.aborts + self.rollbacks) / self.attempts if self.attempts else None

    @property
    def median_lead_time_s(self) -> float | None:
        return statistics.median(t.seconds for t in self.lead_times) if self.lead_times else None

    @property
    def median_restore_s(self) -> float | None:
        return statistics.median(r.seconds for r in self.restores) if self.restores else None


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def delivery_metrics(
    entries: Sequence[AuditEntry], triggers_fired: Sequence[datetime], now: datetime
) -> DeliveryMetrics:
    """The delivery figures of an audit trail (oldest entry first) and the times retraining triggers fired.

    Args:
        entries: the registry's audit log (``pipelines.registry.audit_log``), in sequence order.
        triggers_fired: when a check named in ``monitoring.retrain.triggers`` fired (timezone-aware).
        now: the end of the window (timezone-aware).
    """
    if not entries:
        return DeliveryMetrics(window_days=0.0, deployments=0, aborts=0, rollbacks=0)
    alarms = sorted(triggers_fired)
    registered: dict[str, datetime] = {}  # challenger version -> when it was registered
    promoted: dict[str, datetime] = {}  # version -> when it last became champion by deployment
    last_change: datetime | None = None  # the previous champion change (deployment or rollback)
    deployments = aborts = rollbacks = 0
    leads: list[LeadTime] = []
    restores: list[Restore] = []
    rejected: set[str] = set()
    for e in entries:
        at = _ts(e.ts)
        if e.action == "register" and e.to_version is not None:
            if e.alias == CHAMPION:  # the first model: champion at registration, no canary
                deployments += 1
                promoted[e.to_version] = last_change = at
            elif e.alias == CHALLENGER:
                registered[e.to_version] = at
        elif e.action == "promote" and e.alias == CHAMPION and e.to_version is not None:
            deployments += 1
            start = registered.get(e.to_version, at)
            fired = [a for a in alarms if (last_change is None or a > last_change) and a <= start]
            since = "trigger" if fired else "registration"
            leads.append(LeadTime(e.to_version, (at - (fired[0] if fired else start)).total_seconds(), since))
            promoted[e.to_version] = last_change = at
        elif e.action == "reject" and e.to_version is not None and e.to_version not in rejected:
            rejected.add(e.to_version)  # a second reject of the same challenger is not a second failure
            aborts += 1
            exposed_from = registered.get(e.to_version, at)
            restores.append(Restore(e.to_version, "abort", (at - exposed_from).total_seconds()))
        elif e.action == "rollback" and e.alias == CHAMPION and e.from_version is not None:
            rollbacks += 1
            exposed_from = promoted.get(e.from_version, at)
            restores.append(Restore(e.from_version, "rollback", (at - exposed_from).total_seconds()))
            last_change = at
    window = (now - _ts(entries[0].ts)).total_seconds() / DAY
    return DeliveryMetrics(max(window, 0.0), deployments, aborts, rollbacks, leads, restores)
