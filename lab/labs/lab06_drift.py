"""Lab 6: send drifted traffic, watch data drift fire and a guarded retrain ship a canary.

Concepts: data drift (C32), retraining triggers (C37) and the pipeline that closes the loop (C01).
The learner sends rows from a shifted world (``mlops-lab traffic --kind covariate-shift``, true
labels included) to a running service and runs ``mlops-lab monitor``. The checker reads what that
left: the latest saved data-drift finding and the HTML report it names
(``core/findings.py``), the retrain guard's row (``monitoring/retrain_guard.py``: a retrain
started and ended by starting a canary), the new version's training data (a file the retraining flow
wrote under ``<state>/retrain/``), and the rollout state (a canary of that version was started).

The covariate shift moves two of the four features by 1.5 standard deviations, so the share of
drifted features is 0.5 against a ``drift_share`` of 0.5: at the threshold by construction, but each
moved feature's K-S p-value is around 1e-28 at 500 rows against 0.05, so it fires with a wide margin.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.findings import latest_findings
from core.mlflow_config import mlflow_client
from lab.demos.prep import ensure_champion
from lab.labs import Check
from lab.labs.progress import counts
from lab.labs.scenario import LineNarrator, abort_stale_rollout
from monitoring.retrain_guard import end_cooldown, guard_state
from pipelines.registry import RegistryError, current_aliases
from serving.prediction_log import make_engine
from serving.router import with_strategy, with_weight
from serving.state_store import StateStore

if TYPE_CHECKING:
    from core.context import LabContext
    from core.findings import Finding
    from serving.rollout import RolloutState

PORT = 8706
TRAFFIC = f"mlops-lab traffic --url http://127.0.0.1:{PORT} --kind covariate-shift --rows 500"


def _shared_state(ctx: LabContext) -> tuple[dict[str, Finding], dict[str, Any], RolloutState]:
    """Latest findings, the retrain guard row and the rollout state, from the shared database."""
    engine = make_engine(ctx.settings.prediction_log_uri)
    store = StateStore(ctx.settings.prediction_log_uri, ctx.params.routing)
    try:
        return latest_findings(engine), guard_state(engine), store.rollout()
    finally:
        store.close()
        engine.dispose()


def training_data_path(ctx: LabContext, version: str) -> str | None:
    """The ``data_path`` lineage tag of the run behind a registered version (None if unknown)."""
    from mlflow.exceptions import MlflowException

    try:
        client = mlflow_client(ctx.settings)
        run_id = client.get_model_version(ctx.settings.model_name, version).tags.get("run_id")
        return client.get_run(run_id).data.tags.get("data_path") if run_id else None
    except (MlflowException, RegistryError):
        return None


def made_by_retrain(ctx: LabContext, data_path: str | None) -> bool:
    """Did the retraining flow write this training file (``<state>/retrain/train-*.csv``)?"""
    if not data_path:
        return False
    path = Path(data_path).resolve()
    return path.parent == (ctx.settings.state / "retrain").resolve() and path.name.startswith("train-")


def setup(ctx: LabContext) -> list[str]:
    """A champion (trained if missing), no rollout in progress, every user on the champion, no cooldown left."""
    n = LineNarrator()
    n.lines.append(f"champion is v{ensure_champion(ctx, n)}")
    abort_stale_rollout(ctx, n, "lab 6 setup: the retrain starts its own canary")
    store = StateStore(ctx.settings.prediction_log_uri, ctx.params.routing)
    try:
        state = store.update_routing(lambda r: with_weight(with_strategy(r, "canary"), 0.0))
    finally:
        store.close()
    n.lines.append(f"routing v{state.version}: strategy canary at 0 %, so every request goes to the champion")
    engine = make_engine(ctx.settings.prediction_log_uri)
    try:
        if end_cooldown(engine, now=time.time()):
            n.lines.append("retrain cooldown ended: the retrain this lab triggers may start at once")
        else:
            n.lines.append("a retrain is running: wait for it to finish, then run `mlops-lab lab setup 6` again")
    finally:
        engine.dispose()
    return n.lines


def check(ctx: LabContext, answer: str | None, since: datetime) -> list[Check]:
    """Drift fired, its report exists, a guarded retrain ran, a newer gated challenger, its canary started.

    Only a finding, a retrain and a rollout since the lab started count.
    """
    findings, guard, rollout = _shared_state(ctx)
    drift = findings.get("data_drift")
    drift = drift if drift is not None and counts(drift.ts, since) else None
    checks = [
        Check(
            "data drift fired on the newest traffic",
            drift is not None and drift.fired,
            f"{drift.status} at {drift.ts}: {drift.summary}" if drift else "no data-drift finding since the start",
            f"send drifted traffic: `{TRAFFIC}`, then `mlops-lab monitor`",
        )
    ]
    html = drift.reports.get("html") if drift else None
    checks.append(
        Check(
            "the drift report exists",
            html is not None and Path(html).is_file(),
            f"{html} ({'found' if html and Path(html).is_file() else 'missing'})" if html else "no report named",
            "`mlops-lab monitor` writes it with the finding; run it again if the file was deleted",
        )
    )
    result = str(guard.get("last_result") or "")
    checks.append(
        Check(
            "a guarded retrain ran and started a canary",
            counts(guard.get("last_started"), since) and result.startswith("started-canary"),
            f"retrains started: {guard.get('starts')}; last result: {result[:160] or '-'}",
            "`mlops-lab monitor` (not --dry-run) retrains when a trigger fired; if it says 'skipped' the "
            "cooldown of a retrain since the start holds (monitoring.retrain.cooldown_minutes): "
            "`mlops-lab lab setup 6` starts over",
        )
    )
    aliases = current_aliases(ctx.settings)
    champion, challenger = aliases.get("champion"), aliases.get("challenger")
    data_path = training_data_path(ctx, challenger) if challenger else None
    newer = challenger is not None and champion is not None and int(challenger) > int(champion)
    checks.append(
        Check(
            "a newer challenger, trained by the retrain on production rows",
            newer and made_by_retrain(ctx, data_path),
            f"champion v{champion}, challenger v{challenger}, trained on {data_path or '-'}",
            "the retrain registers its model as challenger only if the quality gate passes; "
            "`mlops-lab registry list` shows the versions and their gate results",
        )
    )
    started = counts(rollout.started_at, since)
    checks.append(
        Check(
            "a canary rollout started for that challenger",
            challenger is not None and rollout.challenger_version == challenger and started,
            f"rollout of v{rollout.challenger_version}: {rollout.status}" if started else "no rollout since the start",
            "the retrain starts it; if a rollout was already running it could not: "
            "`mlops-lab rollout status`, then `mlops-lab rollout abort --reason ...` and `mlops-lab rollout start`",
        )
    )
    return checks
