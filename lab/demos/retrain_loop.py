"""Demo ``retrain-loop`` (C37): drifted traffic → the monitoring flow fires → one guarded retrain → a canary.

Concept: retraining triggers, and why a trigger alone is not enough. The monitoring flow decides from
its findings (a trigger check fired), the retraining flow takes a lease and a cooldown in the shared
database, retrains on reference + labelled production rows through the same quality gate, and starts a
canary instead of replacing the champion. A second look a moment later sees the same drift, and the
cooldown refuses a second retrain: no retrain storm. `make demo` tells the whole story including the
canary's promotion; this demo zooms in on the trigger and its guards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flows.monitoring_flow import monitoring_flow
from flows.monitoring_outcome import print_monitoring
from lab.demos.prep import ensure_champion
from lab.demos.traffic import running_service, users
from lab.demos.warmup import PrefectWarmup, preload
from monitoring.retrain_guard import guard_state
from pipelines.registry import current_aliases
from serving.prediction_log import make_engine

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.narrate import Narrator


def run(n: Narrator, ctx: LabContext) -> None:

    s, p = ctx.settings, ctx.params
    n.title("Retraining triggers: drift fires, a guarded retrain ships as a canary", "C37 retraining triggers")
    n.step("A champion serves; 500 requests arrive from a drifted world (sepal measurements shifted)")
    warmup = PrefectWarmup()  # Prefect's local API comes up in its own process while the traffic flows
    champion = ensure_champion(ctx, n)
    with running_service(ctx, restore_routing=False) as service:
        traffic = service.send(users("drift", 500), seed=500, kind="covariate-shift")
        n.say(f"v{champion} answered {traffic.total}; true labels came back for each as feedback")

    n.step("The monitoring flow looks at the newest window and decides")
    n.say(
        f"triggers in params.yaml: {p.monitoring.retrain.triggers}; cooldown {p.monitoring.retrain.cooldown_minutes:g} "
        f"min; lease {p.monitoring.retrain.lock_ttl_s:g} s"
    )
    with n.console.status("monitoring flow"):
        preload("evidently")  # the drift check needs it; imported while the API may still be starting
        warmup.wait()
        first = monitoring_flow(s, p)
    print_monitoring(first, n.console)
    if first.retrain is not None and first.retrain.status == "started-canary":
        n.ok(
            f"v{first.retrain.version} registered as challenger and its canary started; champion still "
            f"v{current_aliases(s).get('champion')}"
        )
    elif first.retrain is not None:
        n.say(f"retrain {first.retrain.status}: {first.retrain.reason}")
    n.why(
        "a trigger starts a retrain, never a release: the new model passes the same gate as any other and "
        "must earn traffic step by step (`mlops-lab rollout run` drives the canary from here)"
    )

    n.step("A second look a moment later: the drift is still there")
    with n.console.status("monitoring flow again"):
        second = monitoring_flow(s, p)
    if second.retrain is not None:
        n.ok(f"retrain {second.retrain.status}: {second.retrain.reason}")
    engine = make_engine(s.prediction_log_uri)
    try:
        guard = guard_state(engine)
    finally:
        engine.dispose()
    n.say(f"retrains ever started: {guard['starts']}; last result: {guard['last_result']}")
    n.why(
        "the lease allows one retrain at a time across every process; the cooldown counts from the last start, "
        "failed or not, so a persistent drift or a broken feed cannot start a retrain at every check"
    )
    n.code(
        "flows/monitoring_flow.py",
        "flows/retraining_flow.py",
        "monitoring/retrain_guard.py",
        "monitoring/retrain_plan.py",
    )
    n.say(
        "try: `mlops-lab monitor`, `mlops-lab monitor --dry-run`, `mlops-lab monitor --retrain`, "
        "`mlops-lab monitor --serve` (cron deployment)"
    )
