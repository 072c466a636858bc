"""Lab 3: run a canary of a bad model and watch the controller abort it.

Concepts: canary release (C21) and automatic rollback (C26). ``setup`` plants a challenger trained on
labels with two classes swapped (``lab/demos/traffic.py::plant_bad_challenger``, tagged ``planted``).
The learner starts the service, starts the rollout, sends labelled traffic and lets the controller
tick. The checker reads what that left: the rollout state in the shared database (its challenger and
history), the challenger's registry tags, the routing weight and the champion alias; only a rollout
started since ``lab setup 3`` counts. It wants an
abort *by the controller*, with a reason naming the metric that breached: an operator's manual
``rollout abort`` proves nothing about automatic rollback. Once the rollout has a history the check
also draws it (``reports/lab03/rollout-weights.png`` in the state: weight steps and every verdict).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from lab.demos.prep import ensure_champion
from lab.demos.traffic import plant_bad_challenger
from lab.labs import Check
from lab.labs.progress import counts
from lab.labs.scenario import LineNarrator, abort_stale_rollout, version_tags
from pipelines.registry import current_aliases
from serving.rollout_picture import PICTURE_NAME, write_rollout_picture
from serving.state_store import StateStore

if TYPE_CHECKING:
    from core.context import LabContext
    from serving.rollout import RolloutState

METRICS = ("error_rate_increase", "error_rate", "p99_latency", "online_accuracy")  # canary_analysis check names
# The accuracy test needs rollout.min_feedback (200) labels per arm in the step; about 8 % of these 100 users
# hash to the 10 % challenger, so 3,000 rows give it about 240.
TRAFFIC_HINT = "send labelled traffic: `mlops-lab traffic --url http://127.0.0.1:8703 --rows 3000`"


def metric_named(reason: str) -> str | None:
    """The first canary metric named in an abort reason, if any."""
    return next((m for m in METRICS if m in reason), None)


def setup(ctx: LabContext) -> list[str]:
    """A champion (trained if missing), no rollout in progress, and a PLANTED bad challenger."""
    n = LineNarrator()
    n.lines.append(f"champion is v{ensure_champion(ctx, n)}")
    abort_stale_rollout(ctx, n, "lab 3 setup: a new rollout will start")
    challenger = current_aliases(ctx.settings).get("challenger")
    tags = version_tags(ctx, challenger) if challenger else {}
    if challenger and tags.get("planted") == "true" and tags.get("status") != "rejected":
        n.lines.append(f"v{challenger} is already the planted challenger (not rejected yet): nothing to do")
    else:
        plant_bad_challenger(ctx, n)
    return n.lines


def _rollout(ctx: LabContext) -> tuple[RolloutState, float]:

    store = StateStore(ctx.settings.prediction_log_uri, ctx.params.routing)
    try:
        return store.rollout(), store.routing().canary_weight
    finally:
        store.close()


def started_since(state: RolloutState, since: datetime) -> bool:
    """Was this rollout started at or after ``since`` (the lab's start)?"""
    return counts(state.started_at, since)


def check(ctx: LabContext, answer: str | None, since: datetime) -> list[Check]:
    """Planted challenger rolled out, aborted by the controller on a metric, rejected, weight 0, champion kept.

    Only a rollout started since the lab started counts: an earlier canary's abort proves nothing here.
    """
    state, weight = _rollout(ctx)
    aliases = current_aliases(ctx.settings)
    fresh = started_since(state, since)
    version = state.challenger_version if fresh else None
    tags = version_tags(ctx, version) if version else {}
    checks = [
        Check(
            "a canary was started for the planted bad challenger",
            version is not None and tags.get("planted") == "true",
            f"rollout of v{version} ({state.status}), planted={tags.get('planted', 'no')}"
            if version
            else "no rollout started since the lab started",
            "`mlops-lab lab setup 3` plants the bad challenger, then `mlops-lab rollout start`",
        )
    ]
    history = state.history if fresh else ()
    last = history[-1] if history else None
    reason = last.reason if last is not None else ""
    metric = metric_named(reason)
    aborted = last is not None and last.event == "abort" and last.actor == "controller" and metric is not None
    if last is None:
        found = "no rollout history"
    else:
        found = f"last event: {last.event} by {last.actor} at {100 * last.weight:g} %: {reason[:160]}"
        picture = ctx.settings.reports_dir / "lab03" / PICTURE_NAME
        write_rollout_picture(state, picture)
        found += f"; picture of the steps and verdicts: {picture}"
    checks.append(
        Check(
            "the controller aborted it on a metric",
            aborted,
            found,
            "an operator's abort does not count; "
            + (
                f"{TRAFFIC_HINT}, then `mlops-lab rollout tick` until the action is abort"
                if last is None or last.event in ("start", "wait", "step", "pause", "resume")
                else "start again: `mlops-lab lab setup 3`, `mlops-lab rollout start`, traffic, ticks"
            ),
        )
    )
    rejected = tags.get("status") == "rejected" and bool(reason) and tags.get("rejection_reason") == reason
    checks.append(
        Check(
            "the challenger is marked rejected with that reason",
            aborted and rejected,
            f"v{version}: status {tags.get('status', '-')}, rejection reason "
            f"{'= the abort reason' if rejected else repr(tags.get('rejection_reason', '-')[:80])}"
            if version
            else "no challenger rolled out",
            "the controller tags it when it aborts: keep ticking (`mlops-lab rollout tick`) with labelled traffic",
        )
    )
    checks.append(
        Check(
            "the canary weight is back to 0",
            aborted and weight == 0.0,
            f"canary weight {100 * weight:g} %",
            "the abort sets it to 0; `mlops-lab rollout status` shows where the rollout stands",
        )
    )
    champion = aliases.get("champion")
    checks.append(
        Check(
            "the champion is unchanged",
            champion is not None and champion != version and version is not None,
            f"champion v{champion}, planted v{version}" if champion else "no champion",
            "the planted model must never be promoted: `mlops-lab registry rollback` if it was, "
            "or `mlops-lab ingest && mlops-lab train` if there is no champion",
        )
    )
    return checks
