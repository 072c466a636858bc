"""What a Prefect flow run says about itself in the UI: its tags and its log lines.

Concept: orchestration (C03). Prefect 3's ``@flow`` takes no tags, and tags set by a caller
(``with prefect.tags(...)``) would have to be repeated at every entry point: the CLI, a demo, a
deployment, a parent flow. So each flow tags its own run when it starts, one API call, and the runs
filter by ``mlops-lab`` and by what they did (``training``, ``purpose:retrain-drift``) in the UI.
"""

from __future__ import annotations

import logging


def tag_this_run(*tags: str) -> None:
    """Add ``tags`` to the running flow run (kept with those it had); nothing outside a flow run."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    run = context.flow_run
    wanted = sorted({*run.tags, *tags})
    if wanted == sorted(run.tags):
        return
    with get_client(sync_client=True) as client:
        client.update_flow_run(run.id, tags=wanted)
    run.tags = wanted


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The flow run's logger: its INFO lines go to the run's Logs tab (the console shows WARNING and up)."""
    from prefect import get_run_logger

    return get_run_logger()
