"""Demo "loop" (C01, what `make demo` runs): the whole closed loop, narrated, on a fresh state of its own.

ingest → validate → train v1 (Prefect flow, gate, champion) → serve → clean traffic with feedback →
monitoring: quiet → the world drifts → monitoring: data drift → guarded retrain on reference + labelled
production rows → gated v2 challenger → canary steps with automated analysis → promoted. Episode 2: a
bad challenger is planted, its canary is aborted on online accuracy and traffic returns to the champion.

The story needs a known starting point (no champion, an empty prediction log, no cooldown running): like
every demo it runs on a state folder of its own, ``<state>/demos/loop``, wiped at the start of every run
(`lab.demos.own_state`); the summary says how to open it. Prefect keeps its usual home, so its UI shows
these flow runs beside all the others.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from core.context import LabContext
from flows.monitoring_flow import monitoring_flow
from flows.monitoring_outcome import print_monitoring
from lab.demos.canary import demo_params, drive_rollout, start_rollout
from lab.demos.prep import VERSION_COLUMNS, display_path, ensure_raw_data, show_outcome, version_rows
from lab.demos.traffic import plant_bad_challenger, running_service, users
from lab.demos.warmup import PrefectWarmup, preload
from lab.ui_state import MLFLOW_PORT
from pipelines.batches import generate_batch, write_batch
from pipelines.data import read_csv
from pipelines.registry import audit_log, current_aliases, ensure_experiment
from pipelines.training_flow import training_flow
from pipelines.validation import validate_file

if TYPE_CHECKING:
    from flows.monitoring_outcome import MonitoringOutcome
    from lab.narrate import Narrator

CLEAN_USERS, DRIFTED_USERS = 300, 500


def _monitor(n: Narrator, ctx: LabContext, label: str) -> MonitoringOutcome:

    with n.console.status(f"monitoring flow: {label}"):
        outcome = monitoring_flow(ctx.settings, ctx.params)
    print_monitoring(outcome, n.console)
    return outcome


def run(n: Narrator, ctx: LabContext) -> None:

    n.title("The MLOps loop, closed: drift → retrain → canary → promote or roll back", "C01 · C37")
    decisions: list[list[str]] = []
    s, p = ctx.settings, ctx.params
    n.say(f"fresh state for this story: {display_path(ctx, s.state)} (wiped at every run)")

    n.step("Ingest iris, validate it with Great Expectations, train v1 through the Prefect `training` flow")
    warmup = PrefectWarmup()  # Prefect's local API starts in its own process while this one works
    raw = ensure_raw_data(ctx, n)
    with n.console.status("training flow (Prefect's local API starts beside the MLflow store)"):
        ensure_experiment(s)  # the fresh MLflow store's migrations run meanwhile
        preload("great_expectations", "evidently")  # validation and drift checks need them later
        warmup.wait()
        first = training_flow(s, p, data_path=str(raw))
    show_outcome(n, first)
    decisions.append(["train v1", first.status, f"v{first.version} → {first.alias}"])

    n.step("A corrupted feed arrives (a sensor switched to millimetres): the data contract refuses it")
    bad = write_batch(generate_batch("out-of-range", read_csv(raw), p, seed=11), s.state / "mm.csv", "out-of-range")
    refused = validate_file(bad, p.dataset, docs_dir=s.gx_dir)
    n.bad(
        f"{len(refused.failures)} failed expectations, e.g. {refused.failures[0].expectation} "
        f"on {refused.failures[0].column}: nothing trains on it"
    )
    decisions.append(["corrupted batch", "refused", f"{len(refused.failures)} failed expectations"])

    with running_service(ctx, restore_routing=False) as service:
        n.step(f"Serve v1; {CLEAN_USERS} users send requests, true labels come back as feedback")
        clean = service.send(users("user", CLEAN_USERS), seed=100)
        n.say(f"{clean.total} answered, online accuracy {clean.accuracy('champion'):.1%}; every request logged")
        quiet = _monitor(n, ctx, "a look at clean traffic")
        decisions.append(["monitor clean traffic", "no retrain", quiet.decision.reason])

        n.step(f"The world drifts: {DRIFTED_USERS} requests with sepal measurements shifted (covariate shift)")
        drifted = service.send(users("user", DRIFTED_USERS), seed=200, kind="covariate-shift")
        n.say(f"{drifted.total} answered; the service cannot tell, each request on its own looks valid")
        service.flush()
        loud = _monitor(n, ctx, "drift check, then a guarded retrain")
        retrain = loud.retrain
        decisions.append(
            ["monitor drifted traffic", "retrain" if loud.decision.retrain else "no retrain", loud.decision.reason]
        )
        if retrain is not None:
            decisions.append(["retrain", retrain.status, f"v{retrain.version}" if retrain.version else retrain.reason])
        n.why(
            "drift says the inputs moved, not that the model is wrong: the retrain learns the new region from "
            "labelled production rows, passes the same gate, and still has to earn traffic as a canary"
        )

        params = demo_params(p)
        if retrain is not None and retrain.status == "started-canary":
            n.step("v2 goes out as a canary: traffic steps up while the controller compares live metrics")
            service.refresh()
            result = drive_rollout(n, service, params, seed=300, kind="covariate-shift")
            decisions.append(["canary of retrained model", result.state.status, result.action.reason])
            (n.ok if result.action.kind == "promote" else n.bad)(
                f"rollout {result.state.status}: {result.action.reason}"
            )

        n.step("Episode 2: a bad challenger is PLANTED; its canary must abort on its own")
        bad_version = plant_bad_challenger(ctx, n)
        service.refresh()
        if start_rollout(n, service, params):
            result = drive_rollout(n, service, params, seed=400, kind="covariate-shift")
            decisions.append([f"canary of planted v{bad_version}", result.state.status, result.action.reason])
            (n.ok if result.action.kind == "abort" else n.bad)(f"rollout {result.state.status}: {result.action.reason}")
            n.say(f"challenger weight now {service.store.routing().canary_weight:.0%}: every user is on the champion")

    n.step("Summary")
    n.table("decisions", ["step", "result", "detail"], decisions)
    n.table(f"registry: {s.model_name}", VERSION_COLUMNS, version_rows(s))
    n.say(f"aliases: {current_aliases(s)}; audit entries: {len(audit_log(s))}")
    if loud.findings:
        n.say(f"drift reports (HTML + JSON): {display_path(ctx, Path(loud.report_dir))}")
    n.say(f"MLflow UI:  uv run mlflow ui --backend-store-uri {s.mlflow_tracking_uri} --port {MLFLOW_PORT}")
    n.say(f"Prefect UI: PREFECT_HOME={os.environ.get('PREFECT_HOME', s.prefect_home)} uv run prefect server start")
    n.say("(`mlops-lab ui` prints both for the state written last: this demo's, until you train in your own)")
