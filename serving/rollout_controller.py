"""The rollout controller: live metrics in, weight steps / promotion / abort out.

Concepts: canary release with automated analysis (C21) and automatic rollback (C26). One ``tick``
reads the persisted rollout state, measures both arms from the prediction log over the same window
(``rollout.analysis_windows``: the current step; at the 100 % step the champion's baseline is its
window of the previous step), runs ``canary_analysis.analyse`` and the pure state machine in ``rollout.py``, then
carries out the action: move the router's weight in the shared state store, promote through the
registry, or abort (weight 0, challenger tagged rejected with the reason, audited). All state is in
the database, so a restarted controller continues where the last one stopped.

In production mode (``settings.approval == "required"``, C60) the last passed step asks the registry for
approval on behalf of whoever started the canary, and the canary keeps its weight: ``answer_approval``
carries out a person's answer (approve: promote; reject: abort like a failed canary) for the admin API and
``mlops-lab registry approve``. An answer given in the registry directly (``mlops-lab registry reject``, a
call of ``pipelines.registry.approve``) is picked up by the next tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa

from pipelines import registry
from serving import rollout
from serving.canary_analysis import Analysis, ArmMetrics, analyse
from serving.log_reader import ANALYSED
from serving.prediction_log import feedback_table, make_engine, predictions_table
from serving.rollout import ACTIVE, Action, RolloutState, RolloutTransitionError, advance, analysis_windows, start
from serving.router import with_paused, with_strategy, with_weight
from serving.state_store import StateStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from core.params import Params
    from core.settings import Settings

P, F = predictions_table.c, feedback_table.c


def arm_metrics(
    engine: sa.Engine,
    arm: str,
    version: str,
    since: datetime | None,
    until: datetime | None = None,
    *,
    first_labels: int | None = None,
) -> ArmMetrics:
    """Requests, errors, latencies and labelled outcomes of one arm + model version logged in [since, until).

    With ``first_labels`` only the first that many labels to arrive (feedback time, then request id)
    count as labelled: once an arm has them its sample is fixed, so later ticks in the same step re-run
    the accuracy test on the same data instead of taking a new look. Forced and pinned requests are not
    counted (`serving.log_reader.ANALYSED`): whoever may send them must not be able to pass or fail a canary.
    """
    stmt = (
        sa.select(P.request_id, P.status, P.latency_ms, P.prediction, F.label, F.ts.label("labelled_at"))
        .select_from(predictions_table.outerjoin(feedback_table, P.request_id == F.request_id))
        .where(P.arm == arm, P.model_version == str(version), ANALYSED)
    )
    if since is not None:
        stmt = stmt.where(P.ts >= since.astimezone(UTC))
    if until is not None:
        stmt = stmt.where(P.ts < until.astimezone(UTC))
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(predictions_table.name):
            return ArmMetrics()
        rows = conn.execute(stmt).all()
    ok = [r for r in rows if r.status == "ok"]
    labelled = sorted((r for r in ok if r.label is not None), key=lambda r: (_utc(r.labelled_at), r.request_id))
    if first_labels is not None:
        labelled = labelled[:first_labels]
    return ArmMetrics(
        requests=len(rows),
        errors=len(rows) - len(ok),
        latencies_ms=tuple(float(r.latency_ms) for r in ok if r.latency_ms is not None),
        labelled=len(labelled),
        correct=sum(r.prediction == r.label for r in labelled),
    )


def _utc(when: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); make them comparable with aware ones."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Tick:
    """One controller step: what it saw and what it did."""

    state: RolloutState
    action: Action
    analysis: Analysis | None


def controller_parts(settings: Settings, params: Params) -> tuple[StateStore, sa.Engine]:
    """What the controller works on: the shared state store and the prediction log's engine.

    The caller closes the store and disposes of the engine when it is done (a CLI process may just exit).
    """
    return StateStore(settings.prediction_log_uri, params.routing), make_engine(settings.prediction_log_uri)


def begin_rollout(
    settings: Settings, params: Params, store: StateStore, now: datetime | None = None, actor: str = "controller"
) -> Tick:
    """Start a canary for the current challenger: first step's weight, strategy canary.

    ``actor`` started it: in production mode the approval is requested on their behalf, so they cannot
    approve it themselves.

    Raises:
        RegistryError: no challenger, or one marked rejected or rolled back, or one that cannot be served
            (an unsafe file, or a signature other than the data contract's features).
    """
    version = registry.servable_challenger(settings, params.dataset.feature_names)
    state, action = start(version, params.rollout, now or datetime.now(UTC), current=store.rollout(), actor=actor)
    store.update_routing(lambda r: with_weight(with_strategy(r, "canary"), action.weight or 0.0))
    store.put_rollout(state)
    return Tick(state, action, None)


def tick(settings: Settings, params: Params, store: StateStore, engine: sa.Engine, now: datetime | None = None) -> Tick:
    """Analyse the running rollout once and carry out the decision."""
    now = now or datetime.now(UTC)
    champion_version = registry.current_aliases(settings).get("champion", "")
    seen: list[Tick] = []
    before: list[RolloutState] = []

    def decide(state: RolloutState) -> RolloutState:
        # Called again if an operator changed the rollout meanwhile (compare-and-swap): decide afresh.
        seen.clear()
        before[:] = [state]
        if state.status not in ACTIVE:
            seen.append(Tick(state, Action("wait", f"no rollout in progress (status {state.status})"), None))
            return state
        if state.status == "awaiting_approval" and answered:
            new_state, action = answered[0](state)
            seen.append(Tick(new_state, action, None))
            return new_state
        windows, first = analysis_windows(state), params.rollout.min_feedback
        champion = windows.champion
        challenger = windows.challenger
        analysis = analyse(
            arm_metrics(engine, "champion", champion_version, champion.since, champion.until, first_labels=first),
            arm_metrics(
                engine,
                "challenger",
                str(state.challenger_version),
                challenger.since,
                challenger.until,
                first_labels=first,
            ),
            params.rollout,
        )
        required = settings.approval == "required"
        new_state, action = advance(state, analysis, params.rollout, now, approval_required=required)
        seen.append(Tick(new_state, action, analysis))
        return new_state

    answered = _answered_in_registry(settings, store.rollout(), champion_version, now)
    store.update_rollout(decide)
    result = seen[-1]
    # The decision is committed first, then carried out. A weight change is safe to repeat. If the
    # registry refuses a promotion or a rejection (an outage), the committed "promoted" / "aborted" is
    # undone -- unless an operator changed the rollout meanwhile -- so the next tick decides again
    # instead of finding a finished rollout whose registry side never happened.
    action = result.action
    if action.kind == "set_weight" and action.weight is not None:
        weight = action.weight
        store.update_routing(lambda r: with_weight(r, weight))
    elif action.kind == "request_approval":
        try:
            registry.request_approval(settings, "rollout-controller", action.reason, requester=_starter(result.state))
        except Exception:
            store.update_rollout(lambda s: before[0] if s == result.state else s)
            raise
    elif action.kind in ("promote", "abort") and result.analysis is None:  # answered in the registry already
        store.update_routing(lambda r: with_weight(r, 0.0))
    elif action.kind in ("promote", "abort"):
        try:
            if action.kind == "promote":
                summary = result.analysis.summary() if result.analysis else ""
                registry.promote(settings, "rollout-controller", f"canary passed every step: {summary}")
            else:
                store.update_routing(lambda r: with_weight(r, 0.0))
                registry.reject_challenger(settings, "rollout-controller", action.reason)
        except Exception:
            store.update_rollout(lambda s: before[0] if s == result.state else s)
            raise
        store.update_routing(lambda r: with_weight(r, 0.0))
    return result


def _starter(state: RolloutState) -> str:
    """Who started the rollout (the approval is requested on their behalf); the controller if unknown."""
    first = state.history[0] if state.history else None
    return first.actor if first is not None and first.event == "start" else "rollout-controller"


def _answered_in_registry(
    settings: Settings, state: RolloutState, champion_version: str, now: datetime
) -> list[Callable[[RolloutState], tuple[RolloutState, Action]]]:
    """For a rollout awaiting approval: the finish it needs if a person already answered in the registry."""
    version = state.challenger_version
    if state.status != "awaiting_approval" or version is None:
        return []
    if champion_version == version:
        return [lambda s: rollout.approve(s, now, "approved in the registry", actor="registry")]
    tags = registry.mlflow_client(settings).get_model_version(settings.model_name, version).tags
    if tags.get("status") == "rejected":
        why = f"rejected in the registry by {tags.get('rejected_by', '?')}: {tags.get('rejection_reason', '')}"
        return [lambda s: rollout.abort(s, now, why, actor=tags.get("rejected_by", "registry"))]
    return []


def answer_approval(
    settings: Settings,
    store: StateStore,
    decision: Literal["approve", "reject"],
    actor: str,
    reason: str,
    now: datetime | None = None,
) -> Tick:
    """A person's answer to the pending approval: approve promotes the challenger, reject aborts the canary.

    The registry judges first (a self-approval, a process as approver or no pending request is refused
    there and nothing changes); then a rollout awaiting approval is finished and its weight goes to 0.

    Raises:
        RegistryError: the registry refused the answer.
        RolloutTransitionError: approving while a canary of the challenger is still stepping.
    """
    state, when = store.rollout(), now or datetime.now(UTC)
    if decision == "reject" and state.status in ACTIVE:
        return operate(settings, store, "abort", actor, reason, when)  # rejects the challenger too
    if decision == "approve" and state.status in ("running", "paused"):
        raise RolloutTransitionError(
            f"a canary of v{state.challenger_version} is {state.status}: it asks for approval after its last "
            "step; approve then, or abort it"
        )
    if decision == "approve":
        registry.approve(settings, actor, reason)
    else:
        registry.reject_challenger(settings, actor, reason)
    if state.status != "awaiting_approval":
        return Tick(state, Action("promote" if decision == "approve" else "abort", reason), None)
    seen: list[Tick] = []

    def finish(current: RolloutState) -> RolloutState:
        seen.clear()
        if current.status != "awaiting_approval" or current.challenger_version != state.challenger_version:
            seen.append(Tick(current, Action("wait", "the rollout changed meanwhile; left as it is"), None))
            return current
        new_state, action = rollout.approve(current, when, reason, actor=actor)
        seen.append(Tick(new_state, action, None))
        return new_state

    store.update_rollout(finish)
    store.update_routing(lambda r: with_paused(with_weight(r, 0.0), False))
    return seen[-1]


def operate(
    settings: Settings, store: StateStore, operation: str, actor: str, reason: str = "", now: datetime | None = None
) -> Tick:
    """An operator's pause / resume / abort, persisted with compare-and-swap and carried out."""
    ops = {"pause": rollout.pause, "resume": rollout.resume, "abort": rollout.abort}
    if operation not in ops:
        raise ValueError(f"operation must be one of {sorted(ops)}, got {operation!r}")
    when = now or datetime.now(UTC)
    seen: list[Tick] = []

    def apply(state: RolloutState) -> RolloutState:
        seen.clear()
        new_state, action = ops[operation](state, when, reason, actor=actor)
        seen.append(Tick(new_state, action, None))
        return new_state

    store.update_rollout(apply)
    result = seen[-1]
    paused = operation == "pause"  # routing decisions then say "rollout paused, weight held"
    if result.action.kind == "abort":
        store.update_routing(lambda r: with_paused(with_weight(r, 0.0), False))
        registry.reject_challenger(settings, actor, result.action.reason)
    else:
        store.update_routing(lambda r: with_paused(r, paused))
    return result
