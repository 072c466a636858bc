"""Prefect 3 flow ``training``: the training steps of `pipelines.training_steps`, each as a task.

Concept: orchestration (C03). Each step is a task, so the Prefect UI shows what ran, how long it
took and where it failed; reading the data retries on transient I/O errors; the decision is
published as a markdown artifact. Validation is cached by the data's md5 and the contract, so
a rerun on the same bytes skips it (state "Cached" in the UI). With no server configured,
Prefect starts its local ephemeral API by itself; with ``PREFECT_API_URL`` set, the same flow
runs on a Prefect server and workers.

The flow takes settings and params as arguments (their JSON form, which Prefect stores, carries no
secrets); a deployment's run passes neither and reads them from its environment, its edge.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from core.context import flow_context
from core.params import Params
from core.settings import Settings
from pipelines import training_steps as steps
from pipelines.data_errors import DataFileError
from pipelines.flow_runs import run_logger, tag_this_run
from pipelines.training_report import search_line
from pipelines.training_steps import Steps, TrainingOutcome, run_training


def validation_cache_key(_context: Any, parameters: dict[str, Any]) -> str:
    """Same bytes (md5) + same data contract → same verdict, so a rerun can skip the work."""
    contract = parameters["params"].dataset.model_dump_json()
    return f"validate-{parameters['data'].md5}-{hashlib.sha256(contract.encode()).hexdigest()[:16]}"


def retry_unless_refused(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry a failed load on I/O trouble, never on a refusal: a missing or unreadable file stays so."""
    try:
        state.result()
    except (FileNotFoundError, DataFileError):
        return False
    except Exception:  # any other failure may be transient: that is what the retries are for
        return True
    return True


TASKS = Steps(
    load=task(name="load", retries=2, retry_delay_seconds=1, retry_condition_fn=retry_unless_refused)(steps.load_data),
    validate=task(name="validate", cache_key_fn=validation_cache_key, persist_result=True)(steps.validate_data),
    train=task(name="train")(steps.train_candidate),
    gate=task(name="gate", retries=1, retry_delay_seconds=1)(steps.gate_candidate),
    register=task(name="register")(steps.register_or_reject),
)


def decision_markdown(outcome: TrainingOutcome) -> str:
    lines = [f"# Training: {outcome.status}", "", f"- run: `{outcome.run_id}`"]
    if outcome.version:
        lines.append(f"- registered version **{outcome.version}** as `{outcome.alias}`")
    if outcome.search:
        lines.append(f"- {search_line(outcome.search)}")
    lines += ["", "## Gate", *(f"- {reason}" for reason in outcome.gate.get("reasons", []))]
    return "\n".join(lines)


def training_run_name() -> str:
    """The Prefect flow run's name: its purpose and the training file, e.g. ``retrain-drift-retrain-20261207``."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    data = Path(str(parameters.get("data_path") or "")).stem or "raw"
    return f"{parameters.get('purpose') or 'train'}-{data}"


@flow(name="training", log_prints=True, flow_run_name=training_run_name)
def training_flow(
    settings: Settings | None = None,
    params: Params | None = None,
    data_path: str | None = None,
    search: bool = False,
    purpose: str = "train",
) -> TrainingOutcome:
    """load → validate → train → gate → register; invalid data fails the flow before training.

    ``purpose`` names the runs (`train`, or `retrain-<trigger>` from the retraining flow): the Prefect flow
    run after it and the training file, the MLflow run after it and the version it became.
    """
    tag_this_run("mlops-lab", "training", f"purpose:{purpose}")
    ctx = flow_context(settings, params)
    path = ctx.settings.resolve(data_path) if data_path else None
    log = run_logger()
    log.info("training on %s (search: %s)", path or "the ingested raw data", search)
    outcome = run_training(ctx.settings, ctx.params, path, search, steps=TASKS, purpose=purpose)
    log.info(
        "training outcome: %s%s; MLflow run %s",
        outcome.status,
        f", version {outcome.version} as {outcome.alias}" if outcome.version else "",
        outcome.run_id,
    )
    create_markdown_artifact(key="training-decision", markdown=decision_markdown(outcome))
    return outcome
