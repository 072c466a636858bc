"""Prefect 3 flow ``rollout``: the canary controller's polling loop, run by an orchestrator.

Concept: canary release with automated analysis (C21), the same loop as ``mlops-lab rollout run`` but
observable: each analysis is a task run (``analyse-and-act``) in the Prefect UI, and each decision is
published as a markdown artifact (``rollout-decision``: step, weight, every check's verdict, the reason),
so "why did the canary stop at 25 %?" is answered from the UI. The flow holds no state of its own: every
tick re-reads the rollout from the shared state store and the parameters from the params file, so a crashed
or cancelled flow run is simply started again and continues where the database says, and a schedule
edited mid-rollout takes effect at the next tick. Scheduling the flow on a Prefect server (a deployment)
instead of a terminal loop changes nothing here.
"""

from __future__ import annotations

import time

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from core.context import flow_context
from core.params import load_params
from core.settings import Settings
from pipelines.flow_runs import tag_this_run
from serving.rollout import ACTIVE
from serving.rollout_controller import Tick, controller_parts, tick

ARTIFACT_KEY = "rollout-decision"


# NO_CACHE: every tick of a flow run has the same inputs, so an input-based cache key would be identical
# for all of them; each call must read the database afresh.
@task(name="analyse-and-act", cache_policy=NO_CACHE)
def analyse_and_act_task(settings: Settings) -> Tick:
    """One controller step: measure both arms, decide, and carry out the decision."""
    params = load_params(settings.params_path)  # every tick: a schedule edited mid-rollout applies at the next
    store, engine = controller_parts(settings, params)
    try:
        return tick(settings, params, store, engine)
    finally:
        engine.dispose()
        store.close()


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def decision_markdown(result: Tick) -> str:
    """The decision of one tick as markdown: step, weight, action, reason, and a row per check."""
    state, action, analysis = result.state, result.action, result.analysis
    lines = [
        f"# Rollout of version {state.challenger_version}: {state.status}",
        "",
        "| step | challenger weight | action |",
        "|---|---|---|",
        f"| {state.step_index + 1} | {100 * state.weight:g} % | {action.kind} |",
        "",
        f"**Reason:** {action.reason}",
        "",
    ]
    if analysis is None:
        return "\n".join([*lines, "No analysis: no rollout in progress."])
    lines += [
        f"## Analysis: {analysis.verdict}",
        "",
        "| check | verdict | observed | limit | reason |",
        "|---|---|---|---|---|",
    ]
    for c in analysis.checks:
        observed = "-" if c.observed is None else f"{c.observed:.4g}"
        limit = "-" if c.limit is None else f"{c.limit:.4g}"
        lines.append(f"| {c.name} | {c.status} | {observed} | {limit} | {_cell(c.reason)} |")
    return "\n".join(lines)


@flow(name="rollout", log_prints=True, flow_run_name="rollout")
def rollout_flow(settings: Settings | None = None, interval_s: float = 10.0, max_ticks: int = 0) -> str:
    """Analyse every ``interval_s`` seconds until promoted or aborted (or ``max_ticks`` analyses, 0 = no limit).

    Returns the rollout's status after the last analysis (``promoted``, ``aborted``, or ``running`` /
    ``paused`` when ``max_ticks`` ran out; ``idle`` if no rollout was started).
    """
    if interval_s < 0 or max_ticks < 0:
        raise ValueError(f"interval_s and max_ticks must be >= 0, got {interval_s} and {max_ticks}")
    tag_this_run("mlops-lab", "rollout")
    settings = flow_context(settings, None).settings  # a deployment's run passes none: its environment's
    ticks = 0
    while True:
        result = analyse_and_act_task(settings)
        create_markdown_artifact(
            key=ARTIFACT_KEY, markdown=decision_markdown(result), description=f"rollout: {result.action.kind}"
        )
        print(f"rollout {result.state.status} at {100 * result.state.weight:g} %: {result.action.reason}")
        ticks += 1
        if result.state.status not in ACTIVE or (max_ticks and ticks >= max_ticks):
            return result.state.status
        time.sleep(interval_s)  # the controller's polling interval: traffic accumulates in between
