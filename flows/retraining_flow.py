"""Prefect 3 flow ``retraining``: a guarded retrain whose model goes out as a canary, never straight to users.

Concept: retraining triggers (C37) with safe delivery (C21, C14). On a trigger the flow

1. takes the retrain lease (monitoring/retrain_guard.py): one retrain at a time, at most one per cooldown;
2. builds the training set: the champion's training data + the newest labelled production rows from the
   feedback loop, the production slice validated against the data contract first (invalid data never trains);
3. runs the ``training`` flow as a subflow (validate → train → gate → register), so the new model meets the
   same quality gate as any other -- a worse model is rejected, never registered as challenger;
4. starts the canary rollout of the new challenger (serving/rollout_controller.py ``begin_rollout``); the
   controller then grows its traffic step by step and promotes or aborts it on live metrics.

Nothing here touches the ``champion`` alias: a failed or rejected retrain leaves the champion serving. The
lease is released in ``finally`` with the outcome, so a failure is recorded and the cooldown still holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from core.context import flow_context
from core.params import Params
from core.settings import Settings
from monitoring.reference import champion_reference
from monitoring.retrain_guard import release, try_acquire
from monitoring.retrain_plan import production_rows, training_set
from pipelines.data import write_csv
from pipelines.flow_runs import tag_this_run
from pipelines.training_flow import training_flow
from pipelines.validation import validate_frame
from serving.log_reader import labelled_window
from serving.prediction_log import make_engine
from serving.rollout_controller import begin_rollout
from serving.state_store import StateStore

ARTIFACT_KEY = "retraining-decision"


@dataclass
class RetrainOutcome:
    """What a retraining flow run ended with."""

    status: str  # "started-canary" | "registered" | "rejected" | "refused-data" | "skipped" | "failed"
    reason: str
    version: str | None = None
    data_path: str | None = None
    production_rows: int = 0


@task(name="build-training-set", cache_policy=NO_CACHE)
def build_training_set_task(settings: Settings, params: Params, stamp: str) -> tuple[str | None, int, str]:
    """Reference + newest labelled production rows → a CSV; (path or None if refused, rows added, note)."""
    s, p = settings, params
    reference = champion_reference(s, p)
    engine = make_engine(s.prediction_log_uri)
    try:
        labelled = labelled_window(engine, last_n=p.monitoring.retrain.recent_rows, model_name=s.model_name)
    finally:
        engine.dispose()
    production = production_rows(labelled, p.dataset, p.monitoring.retrain.recent_rows)
    if len(production):
        checked = validate_frame(production, p.dataset, docs_dir=s.gx_dir, batch_name=f"feedback-{stamp}")
        if not checked.success:
            return None, len(production), f"recent labelled production data failed validation: {checked.summary()}"
    combined = training_set(reference.frame, production, p.dataset)
    path = write_csv(combined, s.state / "retrain" / f"train-{stamp}.csv", p.dataset.decimals)
    note = f"{reference.note} ({len(reference.frame)} rows) + {len(production)} labelled production rows"
    return str(path), len(production), note


@task(name="start-canary", cache_policy=NO_CACHE)
def start_canary_task(settings: Settings, params: Params) -> str:

    store = StateStore(settings.prediction_log_uri, params.routing)
    try:
        result = begin_rollout(settings, params, store)
    finally:
        store.close()
    return f"canary started for v{result.state.challenger_version} at {100 * result.state.weight:g} %"


def _markdown(outcome: RetrainOutcome, trigger: str, why: str) -> str:
    lines = [f"# Retraining ({trigger}): {outcome.status}", "", f"**Trigger:** {why or trigger}", ""]
    lines += [f"**Outcome:** {outcome.reason}", ""]
    if outcome.data_path:
        lines.append(f"- training data: `{outcome.data_path}` ({outcome.production_rows} production rows added)")
    if outcome.version:
        lines.append(f"- new version: **{outcome.version}**")
    return "\n".join(lines)


@flow(name="retraining", log_prints=True, flow_run_name="retrain-{trigger}")
def retraining_flow(
    settings: Settings | None = None,
    params: Params | None = None,
    trigger: str = "manual",
    reason: str = "",
    start_rollout: bool = True,
) -> RetrainOutcome:
    """Guarded retrain → gated challenger → canary. Returns what happened; raises only if training itself crashed.

    ``settings`` and ``params`` are what to retrain; a deployment's run passes neither (read from its environment).
    """
    tag_this_run("mlops-lab", "retraining", f"trigger:{trigger}")
    ctx = flow_context(settings, params)
    knobs = ctx.params.monitoring.retrain
    engine = make_engine(ctx.settings.prediction_log_uri)
    guard = try_acquire(engine, now=time.time(), cooldown_s=60 * knobs.cooldown_minutes, ttl_s=knobs.lock_ttl_s)
    if not guard.acquired or guard.token is None:
        engine.dispose()
        outcome = RetrainOutcome("skipped", guard.reason)
        create_markdown_artifact(key=ARTIFACT_KEY, markdown=_markdown(outcome, trigger, reason))
        print(f"retrain skipped: {guard.reason}")
        return outcome
    result = "failed: crashed before finishing"
    try:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        data_path, added, note = build_training_set_task(ctx.settings, ctx.params, stamp)
        if data_path is None:
            outcome = RetrainOutcome("refused-data", note, production_rows=added)
        else:
            trained = training_flow(ctx.settings, ctx.params, data_path=data_path, purpose=f"retrain-{trigger}")
            if trained.alias == "challenger" and start_rollout:
                canary = start_canary_task(ctx.settings, ctx.params)
                outcome = RetrainOutcome("started-canary", f"{note}; {canary}", trained.version, data_path, added)
            elif trained.version is not None:
                outcome = RetrainOutcome(
                    "registered", f"{note}; registered as {trained.alias}", trained.version, data_path, added
                )
            else:
                reasons = "; ".join(trained.gate.get("reasons", [])) or "the quality gate refused it"
                outcome = RetrainOutcome("rejected", f"{note}; {reasons}", None, data_path, added)
        result = f"{outcome.status}: {outcome.reason}"
    except Exception as err:  # recorded on the lease row, then re-raised: the flow run shows Failed
        result = f"failed: {type(err).__name__}: {err}"
        raise
    finally:
        release(engine, guard.token, result, now=time.time())
        engine.dispose()
    create_markdown_artifact(key=ARTIFACT_KEY, markdown=_markdown(outcome, trigger, reason))
    print(f"retrain {outcome.status}: {outcome.reason}")
    return outcome
