"""Demo "orchestration" (C03): the training flow on Prefect's local API, tasks and artifact."""

from __future__ import annotations

from core.context import LabContext
from lab.demos.prep import ensure_raw_data
from lab.narrate import Narrator
from pipelines.training_flow import training_flow


def run(n: Narrator, ctx: LabContext) -> None:

    n.title("Orchestration with Prefect 3", "C03")
    data = ensure_raw_data(ctx, n)
    n.step("Run the `training` flow: load → validate → train → gate → register, each a Prefect task")
    n.why(
        "an orchestrator gives every step retries, state, logs and a UI; with no server configured Prefect "
        "starts a local API for the run (a few seconds), and with PREFECT_API_URL set the same flow runs on "
        "a real server with workers."
    )
    from prefect.client.orchestration import get_client

    state = training_flow(ctx.settings, ctx.params, data_path=str(data), return_state=True)
    outcome = state.result()
    n.ok(f"flow state: {state.type.value}; outcome: {outcome.status}, version {outcome.version} ({outcome.alias})")

    n.step("What Prefect recorded")
    flow_run_id = state.state_details.flow_run_id
    if flow_run_id is None:  # pragma: no cover - a flow called directly always has a run id
        raise RuntimeError("the flow returned a state without a flow run id")
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))
    ordered = sorted(task_runs, key=lambda t: t.expected_start_time or t.created or 0)
    rows = [[t.name, t.state_name, f"{t.total_run_time.total_seconds():.2f}s"] for t in ordered]
    n.table(f"flow run {flow_run.name}", ["task run", "state", "run time"], rows)
    n.say("the decision is published as the markdown artifact `training-decision` (Prefect UI → Artifacts)")
    n.code("pipelines/training_flow.py", "pipelines/training_steps.py")
    n.say(f"UI: PREFECT_HOME={ctx.settings.prefect_home} prefect server start")
