"""Automated canary analysis: may the challenger take more traffic, must it be pulled, or is it too early?

Concept: progressive delivery with automatic rollback (C21, C26), the job of Argo Rollouts' and Flagger's
analysis. Between weight steps (``rollout.steps`` in params.yaml) the challenger's live metrics are compared
with the champion's: error rate (absolute and as an increase over the champion), p99 latency and online
accuracy from feedback. Each check needs its own minimum sample (``min_requests``, ``min_feedback``);
without it the check is *inconclusive*, never a pass: empty metrics silently passing (or aborting) a rollout
is the classic failure of such controllers. Verdict: any breach with enough data -> ``breach`` (one bad
signal is enough, even if others still lack data); else anything inconclusive -> ``inconclusive``; else
``pass``. A value exactly at its limit passes ("may not exceed").

The rollout itself is a small state machine over immutable plain data: ``start`` -> ``advance`` (pass: next
step or promote after the last; breach: abort to weight 0; inconclusive: wait) with ``pause``/``resume``/
``abort`` for operators. Every function is pure, takes ``now`` and returns ``(new_state, Action)``; the
controller loop and the admin API persist the JSON state and carry out the action (router weight, registry
promote / reject). A paused rollout holds its weight and never steps, but a breach still aborts it: pausing
stops progress, not protection. Weights are the challenger's share in [0, 1], like ``routing.canary_weight``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Literal

import numpy as np

from pipelines.params import RolloutParams

Verdict = Literal["pass", "breach", "inconclusive"]
Status = Literal["idle", "running", "paused", "aborted", "promoted"]
ActionKind = Literal["set_weight", "promote", "abort", "wait"]
STATUSES: tuple[Status, ...] = ("idle", "running", "paused", "aborted", "promoted")
_EPS = 1e-9  # float slack: 0.90 - 0.85 is 0.05000000000000004, and exactly-at-the-limit must pass


@dataclass(frozen=True)
class ArmMetrics:
    """What one arm served in the analysis window; give raw ``latencies_ms`` or a precomputed ``p99_ms``.

    ``errors`` are failed requests (5xx); ``labelled``/``correct`` count predictions with feedback.
    """

    requests: int = 0
    errors: int = 0
    latencies_ms: Sequence[float] = ()
    p99_ms: float | None = None
    labelled: int = 0
    correct: int = 0

    def __post_init__(self) -> None:
        counts = f"requests={self.requests} errors={self.errors} labelled={self.labelled} correct={self.correct}"
        if min(self.requests, self.errors, self.labelled, self.correct) < 0:
            raise ValueError(f"arm metrics must be non-negative counts, got {counts}")
        if self.errors > self.requests or self.correct > self.labelled:
            raise ValueError(f"errors must be <= requests and correct <= labelled, got {counts}")
        if self.p99_ms is not None and len(self.latencies_ms):
            raise ValueError("give either latencies_ms or p99_ms, not both")

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def p99(self) -> float | None:
        if self.p99_ms is not None:
            return float(self.p99_ms)
        return float(np.percentile(self.latencies_ms, 99)) if len(self.latencies_ms) else None

    @property
    def online_accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


@dataclass(frozen=True)
class Check:
    """One guard rail: its status, the observed value against its limit, and why, with numbers."""

    name: str
    status: Verdict
    reason: str
    observed: float | None = None
    limit: float | None = None


@dataclass(frozen=True)
class Analysis:
    """The verdict of one analysis and every check behind it."""

    verdict: Verdict
    checks: tuple[Check, ...]

    @property
    def reasons(self) -> list[str]:
        """The reasons behind the verdict (breaches for a breach, shortfalls when inconclusive)."""
        return [c.reason for c in self.checks if c.status == self.verdict]

    def summary(self) -> str:
        return f"{self.verdict}: " + "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _shortfall(name: str, counts: Mapping[str, int], need: int, unit: str) -> Check | None:
    short = [f"{arm} has {n} {unit}" for arm, n in counts.items() if n < need]
    return Check(name, "inconclusive", f"{name}: {', '.join(short)}, need {need}") if short else None


def _judge(name: str, observed: float, limit: float, detail: str) -> Check:
    ok = observed <= limit + _EPS
    verdict: Verdict = "pass" if ok else "breach"
    return Check(name, verdict, f"{name}: {detail} ({'within' if ok else 'BREACH of'} limit)", observed, limit)


def _error_rate(chall: ArmMetrics, p: RolloutParams) -> Check:
    if short := _shortfall("error_rate", {"challenger": chall.requests}, p.min_requests, "requests"):
        return short
    rate = chall.errors / chall.requests
    detail = f"challenger {chall.errors}/{chall.requests} = {rate:.2%}, max {p.max_error_rate:.2%}"
    return _judge("error_rate", rate, p.max_error_rate, detail)


def _error_rate_increase(champ: ArmMetrics, chall: ArmMetrics, p: RolloutParams) -> Check:
    counts = {"challenger": chall.requests, "champion": champ.requests}
    if short := _shortfall("error_rate_increase", counts, p.min_requests, "requests"):
        return short
    c, k = chall.errors / chall.requests, champ.errors / champ.requests
    detail = (
        f"challenger {c:.2%} vs champion {k:.2%}: {100 * (c - k):+.2f} pts, max +{100 * p.max_error_rate_increase:.2f}"
    )
    return _judge("error_rate_increase", c - k, p.max_error_rate_increase, detail)


def _p99_latency(chall: ArmMetrics, p: RolloutParams) -> Check:
    if short := _shortfall("p99_latency", {"challenger": chall.requests}, p.min_requests, "requests"):
        return short
    if (p99 := chall.p99) is None:
        return Check("p99_latency", "inconclusive", "p99_latency: challenger has no latency samples")
    return _judge(
        "p99_latency", p99, p.max_p99_latency_ms, f"challenger {p99:.1f} ms, max {p.max_p99_latency_ms:.1f} ms"
    )


def _online_accuracy(champ: ArmMetrics, chall: ArmMetrics, p: RolloutParams) -> Check:
    counts = {"challenger": chall.labelled, "champion": champ.labelled}
    if short := _shortfall("online_accuracy", counts, p.min_feedback, "labelled predictions"):
        return short
    c, k = chall.correct / chall.labelled, champ.correct / champ.labelled
    detail = (
        f"challenger {chall.correct}/{chall.labelled} = {c:.2%} vs champion {champ.correct}/{champ.labelled} = "
        f"{k:.2%}: drop {100 * (k - c):.2f} pts, max {100 * p.max_accuracy_drop:.2f}"
    )
    return _judge("online_accuracy", k - c, p.max_accuracy_drop, detail)


def analyse(champion: ArmMetrics, challenger: ArmMetrics, params: RolloutParams) -> Analysis:
    """Compare the arms over the same window (the current step) and give a verdict with per-check reasons.

    At a 100 % step the champion serves nothing, so the comparative checks stay inconclusive unless the
    caller passes the champion's metrics from the last window in which it served (its baseline).
    """
    checks = (
        _error_rate(challenger, params),
        _error_rate_increase(champion, challenger, params),
        _p99_latency(challenger, params),
        _online_accuracy(champion, challenger, params),
    )
    statuses = {c.status for c in checks}
    verdict: Verdict = "breach" if "breach" in statuses else "inconclusive" if "inconclusive" in statuses else "pass"
    return Analysis(verdict, checks)


# ---- the rollout state machine ---------------------------------------------------------------------------


class RolloutTransitionError(RuntimeError):
    """An operation that the rollout's current status does not allow (e.g. advancing an aborted rollout)."""


@dataclass(frozen=True)
class Action:
    """What the caller must do now; ``weight`` is the challenger share to apply (None: keep the current one).

    ``promote``: move champion <- challenger in the registry, then set the weight to 0 (nothing left to
    canary). ``abort``: set the weight to 0 and mark the challenger rejected with ``reason``.
    """

    kind: ActionKind
    reason: str
    weight: float | None = None


@dataclass(frozen=True)
class RolloutEvent:
    """One audited decision; consecutive waits collapse into one entry (``repeats``) to bound the history."""

    at: datetime
    event: str  # start | step | wait | pause | resume | abort | promote
    weight: float
    reason: str
    actor: str = "controller"
    repeats: int = 1


@dataclass(frozen=True)
class RolloutState:
    """Persisted rollout state; ``step_started_at`` is where the next analysis window begins."""

    status: Status = "idle"
    challenger_version: str | None = None
    step_index: int = 0
    weight: float = 0.0
    started_at: datetime | None = None
    step_started_at: datetime | None = None
    history: tuple[RolloutEvent, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return json.loads(self.to_json())

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=datetime.isoformat)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutState:
        """Rebuild a state from ``to_dict`` output; raises ValueError naming what is wrong."""
        try:
            if data["status"] not in STATUSES:
                raise ValueError(f"status {data['status']!r} is not one of {', '.join(STATUSES)}")
            history = tuple(RolloutEvent(**{**e, "at": datetime.fromisoformat(e["at"])}) for e in data["history"])
            return cls(
                status=data["status"],
                challenger_version=data["challenger_version"],
                step_index=int(data["step_index"]),
                weight=float(data["weight"]),
                started_at=_parse_time(data["started_at"]),
                step_started_at=_parse_time(data["step_started_at"]),
                history=history,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"invalid rollout state ({err!r}): restore it or delete it to reset to idle") from err

    @classmethod
    def from_json(cls, text: str) -> RolloutState:
        return cls.from_dict(json.loads(text))


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _record(state: RolloutState, now: datetime, event: str, reason: str, actor: str, **changes: Any) -> RolloutState:
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}; use datetime.now(UTC)")
    entry = RolloutEvent(now, event, changes.get("weight", state.weight), reason, actor)
    history = state.history
    if event == "wait" and history and history[-1].event == "wait":
        entry, history = replace(entry, repeats=history[-1].repeats + 1), history[:-1]
    return replace(state, history=(*history, entry), **changes)


def _require(state: RolloutState, allowed: tuple[Status, ...], operation: str) -> None:
    if state.status in allowed:
        return
    hint = {
        "idle": "no rollout is in progress; start one first",
        "aborted": "it is finished; start a new rollout",
        "promoted": "it is finished; start a new rollout",
        "running": "it is running; pause it first",
        "paused": "it is paused; resume it first",
    }[state.status]
    raise RolloutTransitionError(f"cannot {operation} a rollout that is {state.status}: {hint}")


def start(
    challenger_version: str,
    params: RolloutParams,
    now: datetime,
    *,
    current: RolloutState | None = None,
    actor: str = "controller",
) -> tuple[RolloutState, Action]:
    """Begin a canary of ``challenger_version`` at the first step; refuses while another is active."""
    if current is not None:
        _require(current, ("idle", "aborted", "promoted"), "start over")
    weight = params.steps[0] / 100
    reason = f"canary of version {challenger_version} starts at {params.steps[0]} %, steps {params.steps}"
    fresh = RolloutState("running", challenger_version, 0, 0.0, now, now)
    return _record(fresh, now, "start", reason, actor, weight=weight), Action("set_weight", reason, weight)


def _finish(
    state: RolloutState, now: datetime, status: Literal["aborted", "promoted"], reason: str, actor: str
) -> tuple[RolloutState, Action]:
    kind: ActionKind = "abort" if status == "aborted" else "promote"
    return _record(state, now, kind, reason, actor, status=status, weight=0.0), Action(kind, reason, 0.0)


def advance(
    state: RolloutState, analysis: Analysis, params: RolloutParams, now: datetime
) -> tuple[RolloutState, Action]:
    """Apply one analysis: pass -> next step (promote after the last), breach -> abort, else wait."""
    _require(state, ("running", "paused"), "advance")
    at = f"at {100 * state.weight:g} %"
    if analysis.verdict == "breach":
        return _finish(state, now, "aborted", f"analysis {at}: {analysis.summary()}", "controller")
    if state.status == "paused" or analysis.verdict == "inconclusive":
        why = "paused, weight held" if state.status == "paused" else analysis.summary()
        reason = f"waiting {at}: {why}"
        return _record(state, now, "wait", reason, "controller"), Action("wait", reason)
    # Next step = first one above the current weight, so a schedule edited mid-rollout still goes forward.
    nxt = next((i for i, s in enumerate(params.steps) if s > round(100 * state.weight, 6)), None)
    if nxt is None:
        return _finish(
            state, now, "promoted", f"all steps passed; last analysis {at}: {analysis.summary()}", "controller"
        )
    weight, reason = params.steps[nxt] / 100, f"analysis {at} passed; step to {params.steps[nxt]} %"
    stepped = _record(state, now, "step", reason, "controller", step_index=nxt, weight=weight, step_started_at=now)
    return stepped, Action("set_weight", reason, weight)


def pause(state: RolloutState, now: datetime, reason: str = "", *, actor: str = "admin") -> tuple[RolloutState, Action]:
    """Hold the rollout at its current weight: no steps (breaches still abort)."""
    _require(state, ("running",), "pause")
    why = f"paused at {100 * state.weight:g} %" + (f": {reason}" if reason else "")
    return _record(state, now, "pause", why, actor, status="paused"), Action("wait", why)


def resume(
    state: RolloutState, now: datetime, reason: str = "", *, actor: str = "admin"
) -> tuple[RolloutState, Action]:
    """Let a paused rollout step again; the current step's window carries on."""
    _require(state, ("paused",), "resume")
    why = f"resumed at {100 * state.weight:g} %" + (f": {reason}" if reason else "")
    return _record(state, now, "resume", why, actor, status="running"), Action("wait", why)


def abort(state: RolloutState, now: datetime, reason: str, *, actor: str = "admin") -> tuple[RolloutState, Action]:
    """Send all traffic back to the champion (weight 0) and record why."""
    _require(state, ("running", "paused"), "abort")
    if not reason.strip():
        raise ValueError("abort needs a reason: it is recorded in the audit log and on the rejected challenger")
    return _finish(state, now, "aborted", reason, actor)
