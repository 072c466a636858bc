"""The canary rollout as a small state machine over immutable plain data.

Concept: progressive delivery with automatic rollback (C21, C26). ``start`` -> ``advance`` (pass: next
step or promote after the last; breach: abort to weight 0; inconclusive: wait) with ``pause``/``resume``/
``abort`` for operators. Every function is pure, takes ``now`` and returns ``(new_state, Action)``; the
controller loop and the admin API persist the JSON state and carry out the action (router weight, registry
promote / reject). A paused rollout holds its weight and never steps, but a breach still aborts it: pausing
stops progress, not protection. Weights are the challenger's share in [0, 1], like ``routing.canary_weight``.
The verdicts come from ``canary_analysis.analyse``, over the windows ``analysis_windows`` gives: both arms over
the current step (rows logged since it began), except at the 100 % step, where the champion serves nothing and
its baseline is its window of the previous step, the last one both arms shared (a historical control: a change
in traffic or label mix between the two windows is not separated from the challenger's effect).

Production mode (``approval_required``, C60): after the last step the rollout does not promote but turns
``awaiting_approval`` (action ``request_approval``) and keeps its weight; ``approve`` promotes and
``reject`` aborts, both by a person. While it waits the analysis goes on and a breach still aborts it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Literal

from core.params import RolloutParams
from serving.canary_analysis import Analysis

Status = Literal["idle", "running", "paused", "awaiting_approval", "aborted", "promoted"]
ActionKind = Literal["set_weight", "promote", "request_approval", "abort", "wait"]
STATUSES: tuple[Status, ...] = ("idle", "running", "paused", "awaiting_approval", "aborted", "promoted")
ACTIVE: tuple[Status, ...] = ("running", "paused", "awaiting_approval")  # a canary that holds traffic


class RolloutTransitionError(RuntimeError):
    """An operation that the rollout's current status does not allow (e.g. advancing an aborted rollout)."""


@dataclass(frozen=True)
class Action:
    """What the caller must do now; ``weight`` is the challenger share to apply (None: keep the current one).

    ``promote``: move champion <- challenger in the registry, then set the weight to 0 (nothing left to
    canary). ``request_approval``: ask the registry for a person's approval, keep the weight.
    ``abort``: set the weight to 0 and mark the challenger rejected with ``reason``.
    """

    kind: ActionKind
    reason: str
    weight: float | None = None


@dataclass(frozen=True)
class RolloutEvent:
    """One audited decision; consecutive waits collapse into one entry (``repeats``) to bound the history."""

    at: datetime
    event: str  # start | step | wait | pause | resume | abort | promote | request_approval
    weight: float
    reason: str
    actor: str = "controller"
    repeats: int = 1


@dataclass(frozen=True)
class RolloutState:
    """Persisted rollout state; ``step_started_at`` is where the current step's analysis window begins.

    ``previous_step_started_at`` is where the previous step's window began (it ended at ``step_started_at``):
    the champion's baseline at the 100 % step.
    """

    status: Status = "idle"
    challenger_version: str | None = None
    step_index: int = 0
    weight: float = 0.0
    started_at: datetime | None = None
    step_started_at: datetime | None = None
    history: tuple[RolloutEvent, ...] = ()
    previous_step_started_at: datetime | None = None

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
                previous_step_started_at=_parse_time(data.get("previous_step_started_at")),  # absent before v2
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"invalid rollout state ({err!r}): restore it or delete it to reset to idle") from err

    @classmethod
    def from_json(cls, text: str) -> RolloutState:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class Window:
    """A span of the prediction log by prediction time: ``since`` <= ts < ``until`` (None: open end)."""

    since: datetime | None
    until: datetime | None = None


@dataclass(frozen=True)
class ArmWindows:
    """The windows the analysis measures each arm over."""

    champion: Window
    challenger: Window


def analysis_windows(state: RolloutState) -> ArmWindows:
    """The same window for both arms: the current step, from ``step_started_at`` on.

    At the 100 % step the champion serves nothing in that window, so its baseline is the previous step's
    window [``previous_step_started_at``, ``step_started_at``), the last one in which both arms served. A
    state without a previous step at 100 % (saved before this field existed) gets an empty champion
    window, so the comparative checks stay inconclusive instead of comparing against the wrong span.
    """
    current = Window(state.step_started_at or state.started_at)
    if state.weight < 1.0:
        return ArmWindows(champion=current, challenger=current)
    if state.previous_step_started_at is None:
        return ArmWindows(champion=Window(current.since, current.since), challenger=current)
    return ArmWindows(champion=Window(state.previous_step_started_at, current.since), challenger=current)


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
        "awaiting_approval": "it awaits a person's approval; approve or reject it",
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
    state: RolloutState, analysis: Analysis, params: RolloutParams, now: datetime, *, approval_required: bool = False
) -> tuple[RolloutState, Action]:
    """Apply one analysis: pass -> next step (promote after the last), breach -> abort, else wait.

    With ``approval_required`` the last pass asks for approval instead of promoting (weight kept); a
    rollout awaiting approval only waits, or aborts on a breach.
    """
    _require(state, ACTIVE, "advance")
    at = f"at {100 * state.weight:g} %"
    if analysis.verdict == "breach":
        return _finish(state, now, "aborted", f"analysis {at}: {analysis.summary()}", "controller")
    if state.status != "running" or analysis.verdict == "inconclusive":
        why = {"paused": "paused, weight held", "awaiting_approval": "awaiting a person's approval, weight held"}
        why_now = why.get(state.status, analysis.summary())
        reason = f"waiting {at}: {why_now}"
        return _record(state, now, "wait", reason, "controller"), Action("wait", reason)
    # Next step = first one above the current weight, so a schedule edited mid-rollout still goes forward.
    nxt = next((i for i, s in enumerate(params.steps) if s > round(100 * state.weight, 6)), None)
    if nxt is None and approval_required:
        reason = f"all steps passed; approval requested; last analysis {at}: {analysis.summary()}"
        asked = _record(state, now, "request_approval", reason, "controller", status="awaiting_approval")
        return asked, Action("request_approval", reason)
    if nxt is None:
        return _finish(
            state, now, "promoted", f"all steps passed; last analysis {at}: {analysis.summary()}", "controller"
        )
    weight, reason = params.steps[nxt] / 100, f"analysis {at} passed; step to {params.steps[nxt]} %"
    stepped = _record(
        state,
        now,
        "step",
        reason,
        "controller",
        step_index=nxt,
        weight=weight,
        step_started_at=now,
        previous_step_started_at=state.step_started_at,
    )
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


def approve(state: RolloutState, now: datetime, reason: str, *, actor: str) -> tuple[RolloutState, Action]:
    """A person approved the waiting challenger: the rollout is promoted (the registry side is the caller's)."""
    _require(state, ("awaiting_approval",), "approve")
    return _finish(state, now, "promoted", f"approved by {actor}: {reason}", actor)


def abort(state: RolloutState, now: datetime, reason: str, *, actor: str = "admin") -> tuple[RolloutState, Action]:
    """Send all traffic back to the champion (weight 0) and record why (also: a rejected approval)."""
    _require(state, ACTIVE, "abort")
    if not reason.strip():
        raise ValueError("abort needs a reason: it is recorded in the audit log and on the rejected challenger")
    return _finish(state, now, "aborted", reason, actor)
