"""Demo ``canary``: a challenger earns traffic step by step, or the controller pulls it automatically.

Concepts: canary release (C21) and automatic rollback (C26). The router sends a *weight* of users to
the challenger by consistent hashing of the user id (sticky: a user stays on one arm), and the
rollout controller walks the weight through ``rollout.steps`` in params.yaml. Between steps it
compares the challenger's live metrics with the champion's over the same window, the current step
(error rate, p99 latency, and online accuracy from feedback by a one-sided test of harm beyond a
margin), each only once it has its minimum sample; too little data is *inconclusive* and the
controller waits. At 100 % the champion's baseline is its window of the previous step. Passing the
last step promotes the challenger in the registry; any breach aborts: weight back to 0, challenger
tagged rejected with the reason, audited. The second episode plants a model trained on swapped labels
to show that abort. Its report folder (``reports/canary`` in the demo's state) gets a picture of each
episode's weight steps and verdicts and one of online accuracy per version over the whole demo.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from core.mlflow_config import mlflow_client
from lab.demos.prep import display_path, ensure_champion
from lab.demos.traffic import (
    ARM_COLUMNS,
    Traffic,
    arm_table,
    ensure_challenger,
    plant_bad_challenger,
    running_service,
    users,
)
from lab.demos.traffic import users as user_ids
from monitoring.online_accuracy import PICTURE_NAME as ONLINE_ACCURACY
from monitoring.online_accuracy import accuracy_over_time, write_accuracy_picture
from pipelines.registry import RegistryError, current_aliases
from serving.log_reader import labelled_window
from serving.rollout import ACTIVE, RolloutTransitionError
from serving.rollout_controller import begin_rollout, operate, tick
from serving.rollout_picture import write_rollout_picture
from serving.router import bucket

if TYPE_CHECKING:
    from pathlib import Path

    from core.context import LabContext
    from core.params import Params
    from lab.demos.traffic import DemoService
    from lab.narrate import Narrator
    from serving.rollout_controller import Tick

DEMO_MIN_SAMPLE = 30  # per arm and step; params.yaml asks for more, which would take minutes of demo traffic
DEMO_ALPHA = 0.01  # stricter than params.yaml: at 30 labels a good challenger must not be aborted on noise
MAX_ROUNDS = 15
SHORT = {"error_rate": "err", "error_rate_increase": "Δerr", "p99_latency": "p99", "online_accuracy": "acc"}
MARK = {"pass": "✔", "breach": "✘", "inconclusive": "…"}


def demo_params(params: Params) -> Params:
    """A copy of params with demo-sized samples and a stricter test level (the file itself is untouched)."""
    demo = {"min_requests": DEMO_MIN_SAMPLE, "min_feedback": DEMO_MIN_SAMPLE, "accuracy_alpha": DEMO_ALPHA}
    rollout = params.rollout.model_copy(update=demo)
    return params.model_copy(update={"rollout": rollout})


def _round_size(weight: float) -> int:
    """Users per round so that the challenger most likely gets its minimum sample in one round."""
    return max(40, min(400, math.ceil(1.3 * DEMO_MIN_SAMPLE / max(weight, 0.01))))


def drive_rollout(
    n: Narrator, service: DemoService, params: Params, seed: int, before: Traffic | None = None, kind: str = "clean"
) -> Tick:
    """Send traffic (rows of batch ``kind``) with feedback and tick the controller until it promotes or aborts."""
    s, log = service.ctx.settings, service.runtime.log
    if log is None:
        raise RuntimeError("the service is not running: drive the rollout inside `with running_service(ctx)`")
    rows: list[list[object]] = []
    sent, to_challenger = (before.total, before.arms["challenger"]) if before is not None else (0, 0)
    for round_ in range(MAX_ROUNDS + 1):
        weight = service.store.routing().canary_weight
        service.flush()
        result = tick(s, params, service.store, log.engine)
        checks = (
            "  ".join(f"{SHORT[c.name]} {MARK[c.status]}" for c in result.analysis.checks) if result.analysis else "-"
        )
        rows.append([f"{100 * weight:g} %", sent, to_challenger, checks, result.action.kind])
        if result.analysis is not None and result.analysis.verdict == "inconclusive" and round_ == 0:
            n.say(f"too little data, so the controller waits: {result.analysis.reasons[-1]}")
        service.refresh()  # what every worker's poller does within poll_interval_s
        if result.action.kind in ("promote", "abort") or round_ == MAX_ROUNDS:
            break
        size = _round_size(service.store.routing().canary_weight)
        traffic = service.send(users("user", size), seed=seed + round_, kind=kind)
        sent, to_challenger = traffic.total, traffic.arms["challenger"]
    n.table(
        "controller ticks: error rate, its rise over the champion, p99 latency, online accuracy "
        "(✔ pass, ✘ breach, … too little data)",
        ["weight", "new requests", "to challenger", "checks", "action"],
        rows,
    )
    if result.action.kind not in ("promote", "abort"):
        n.bad(f"no decision after {MAX_ROUNDS} rounds; `mlops-lab rollout status` shows where it stands")
    return result


def report_dir(ctx: LabContext) -> Path:
    """Where this demo's pictures go: ``reports/canary`` in the demo's state."""
    return ctx.settings.reports_dir / "canary"


def draw_rollout(n: Narrator, ctx: LabContext, result: Tick, name: str) -> None:
    """The episode's weight steps and verdicts, from the rollout history the controller kept."""
    out = report_dir(ctx) / name
    write_rollout_picture(result.state, out)
    n.say(f"picture of the weight steps and verdicts: {display_path(ctx, out)}")


def draw_online_accuracy(n: Narrator, ctx: LabContext, service: DemoService) -> None:
    """Online accuracy per version over the whole demo, from the labels the feedback joined to the log."""
    service.flush()
    if service.runtime.log is None:
        return
    table = accuracy_over_time(labelled_window(service.runtime.log.engine, model_name=ctx.settings.model_name))
    if table.empty:
        return
    out = report_dir(ctx) / ONLINE_ACCURACY
    write_accuracy_picture(table, out, "Canary demo: online accuracy per version (champion, promoted, planted)")
    n.say(f"picture of online accuracy per version over time: {display_path(ctx, out)}")


def start_rollout(n: Narrator, service: DemoService, params: Params) -> bool:

    try:
        begun = begin_rollout(service.ctx.settings, params, service.store)
    except (RegistryError, RolloutTransitionError) as err:
        n.bad(str(err))
        return False
    service.refresh()
    n.ok(begun.action.reason)
    return True


def run(n: Narrator, ctx: LabContext) -> None:
    """Roll a good challenger out to promotion, then watch a planted bad one get aborted."""
    s = ctx.settings
    params = demo_params(ctx.params)
    n.title("Canary release: weight steps with automated analysis", "C21 canary · C26 automatic rollback")
    n.step("A champion serves; a challenger waits for traffic")
    champion = ensure_champion(ctx, n)
    with running_service(ctx, restore_routing=False) as service:  # the controller owns the weight
        stale = service.store.rollout()
        if stale.status in ACTIVE:
            try:
                operate(s, service.store, "abort", s.actor, "demo canary starts a new rollout")
            except RegistryError as err:  # its challenger alias is already gone: nothing left to reject
                n.say(f"[dim]{err}[/dim]")
            n.say(f"an earlier rollout of v{stale.challenger_version} was still {stale.status}: aborted it")
        if ensure_challenger(ctx, n) is None:
            return
        service.refresh()
        aliases = current_aliases(s)
        n.say(f"champion v{aliases['champion']}, challenger v{aliases['challenger']}")
        rp = ctx.params.rollout
        n.say(
            f"demo setting: a minimum sample of {DEMO_MIN_SAMPLE} requests and {DEMO_MIN_SAMPLE} labels per arm "
            f"and step (params.yaml: {rp.min_requests} and {rp.min_feedback}), and the accuracy test at alpha "
            f"{DEMO_ALPHA:g} instead of {rp.accuracy_alpha:g} (margin {100 * rp.accuracy_margin:g} points), so "
            "noise in so few labels rarely aborts a good challenger; a copy of params, the file is unchanged"
        )

        n.step(f"Start the rollout: steps {params.rollout.steps} % of users")
        if not start_rollout(n, service, params):
            return
        weight = service.store.routing().canary_weight
        first = service.send(user_ids("user", 200), seed=1)
        n.table(f"200 users at weight {100 * weight:g} %", ARM_COLUMNS, arm_table(first))
        again = service.send(user_ids("user", 200), seed=2)
        same = sum(first.arm_of_user[u] == again.arm_of_user.get(u) for u in first.arm_of_user)
        n.ok(f"sticky: {same}/{len(first.arm_of_user)} users got the same arm on their second request")
        keys = [f"key-{i}" for i in range(10_000)]
        offline = sum(bucket(k) < weight for k in keys) / len(keys)
        n.say(f"over 10,000 keys the hash sends {offline:.2%} to the challenger (weight {weight:.0%})")
        n.why(
            "blake2b of the user id is a uniform bucket in [0, 1); challenger iff bucket < weight. The same in "
            "every worker and replica, and raising the weight only moves users champion → challenger"
        )

        n.step("The controller analyses each step and moves the weight (true labels arrive as feedback)")
        both = Traffic(arms=first.arms + again.arms)
        result = drive_rollout(n, service, params, seed=10, before=both)
        draw_rollout(n, ctx, result, "episode-1-promote.png")
        if result.action.kind == "promote":
            n.ok(
                f"rollout promoted: champion v{champion} → v{current_aliases(s)['champion']} (old one kept as previous)"
            )
        else:
            n.bad(f"rollout {result.state.status}: {result.action.reason}")
        n.why(
            "no step without enough data: inconclusive means wait, never pass. Both arms are measured over the "
            "current step; at 100 % the champion serves nothing, so its baseline is its window of the 50 % step"
        )

        n.step("Episode 2: a bad challenger (PLANTED for this demo)")
        champion = current_aliases(s)["champion"]
        bad = plant_bad_challenger(ctx, n)
        service.refresh()
        if not start_rollout(n, service, params):
            return
        result = drive_rollout(n, service, params, seed=40)
        draw_rollout(n, ctx, result, "episode-2-abort.png")
        if result.action.kind == "abort":
            n.ok(f"rollout aborted: {result.action.reason}")
        else:
            n.bad(f"rollout {result.state.status}: {result.action.reason}")
        tags = mlflow_client(s).get_model_version(s.model_name, bad).tags
        weight = service.store.routing().canary_weight
        n.say(f"weight now {weight:.0%}; v{bad} status={tags.get('status')} (alias kept, visible, never promotable)")
        back = service.send(user_ids("user", 50), seed=60, feedback=False)
        n.ok(f"champion unchanged: v{current_aliases(s)['champion']} == v{champion}; {back.arms['champion']}/50 on it")
        n.why(
            "its offline score looked fine; only online accuracy from feedback showed the truth: the upper "
            "confidence bound on its accuracy minus the champion's fell below the margin, a test, not two "
            "numbers compared; the controller acted without a human: abort = weight 0 + rejected + audit entry"
        )
        draw_online_accuracy(n, ctx, service)
    n.code(
        "serving/router.py (bucket, route)",
        "serving/rollout_controller.py (begin_rollout, tick)",
        "serving/rollout.py",
        "serving/canary_analysis.py",
    )
    n.say("try: `mlops-lab rollout start`, `mlops-lab rollout status`, `mlops-lab rollout run`")
