"""Prefect 3 flow ``training``: the thin orchestration shell around pipelines/training.py.

Concept: orchestration (C03). Each step is a task, so the Prefect UI shows what ran, how long it
took and where it failed; reading the data retries on transient I/O errors; the decision is
published as a markdown artifact. Validation is cached by the data's md5 and the contract, so
a rerun on the same bytes skips it (state "Cached" in the UI). With no server configured,
Prefect starts its local ephemeral API by itself; with ``PREFECT_API_URL`` set, the same flow
runs on a Prefect server and workers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from core.context import load_context
from pipelines import training


@task(name="load", retries=2, retry_delay_seconds=1)
def load_task(path: Path) -> training.LoadedData:
    return training.load_data(path)


def validation_cache_key(_context: Any, parameters: dict[str, Any]) -> str:
    """Same bytes (md5) + same data contract → same verdict, so a rerun can skip the work."""
    contract = load_context().params.dataset.model_dump_json()
    return f"validate-{parameters['data'].md5}-{hashlib.sha256(contract.encode()).hexdigest()[:16]}"


@task(name="validate", cache_key_fn=validation_cache_key, persist_result=True)
def validate_task(data: training.LoadedData, docs_dir: Path) -> dict[str, Any]:
    ctx = load_context()
    return training.validate_data(data, ctx.params, docs_dir)


@task(name="train")
def train_task(data: training.LoadedData, sweep: bool) -> tuple[Any, Any, list[str]]:
    ctx = load_context()
    return training.train_candidate(ctx.settings, ctx.params, data, sweep=sweep)


@task(name="gate", retries=1, retry_delay_seconds=1)
def gate_task(result: Any) -> training.GateReport:
    ctx = load_context()
    return training.gate_candidate(ctx.settings, ctx.params, result)


@task(name="register")
def register_task(
    result: Any, logged: Any, report: training.GateReport, data: training.LoadedData
) -> training.TrainingOutcome:
    ctx = load_context()
    return training.register_or_reject(ctx.settings, ctx.params, result, logged, report, data)


def _decision_markdown(outcome: training.TrainingOutcome) -> str:
    lines = [f"# Training: {outcome.status}", "", f"- run: `{outcome.run_id}`"]
    if outcome.version:
        lines.append(f"- registered version **{outcome.version}** as `{outcome.alias}`")
    lines += ["", "## Gate", *(f"- {reason}" for reason in outcome.gate.get("reasons", []))]
    return "\n".join(lines)


@flow(name="training", log_prints=True)
def training_flow(data_path: str | None = None, sweep: bool = False) -> training.TrainingOutcome:
    """load → validate → train → gate → register; invalid data fails the flow before training."""
    ctx = load_context()
    path = ctx.settings.resolve(data_path or ctx.params.dataset.path)
    data = load_task(path)
    validate_task(data, ctx.settings.gx_dir)
    result, logged, sweep_runs = train_task(data, sweep)
    report = gate_task(result)
    outcome = register_task(result, logged, report, data)
    outcome.sweep_run_ids = sweep_runs
    create_markdown_artifact(key="training-decision", markdown=_decision_markdown(outcome))
    return outcome
