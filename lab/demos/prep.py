"""Shared demo preparation: make sure the raw data and a champion exist, quickly and quietly.

Demos run on fresh or existing state. They call the in-process training steps (not the Prefect
flow) so that each stays well under 30 seconds; the orchestration demo shows the flow itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.registry import current_aliases, list_versions
from pipelines.training_report import print_outcome

if TYPE_CHECKING:
    from core.context import LabContext
    from core.params import Params
    from core.settings import Settings
    from lab.narrate import Narrator
    from pipelines.training_steps import TrainingOutcome


def display_path(ctx: LabContext, path: Path) -> str:
    """A path relative to the project when it is inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(ctx.settings.project_dir.resolve()))
    except ValueError:
        return str(path)


def ensure_raw_data(ctx: LabContext, n: Narrator | None = None) -> Path:
    """The raw dataset file, produced by the ingest step if it is missing."""
    from pipelines.data import ingest

    path = ctx.settings.resolve(ctx.params.dataset.path)
    if not path.exists():
        ingest(ctx.params.dataset, ctx.params.ingest, path)
        if n:
            n.say(f"ingested {display_path(ctx, path)} from scikit-learn's bundled iris")
    return path


def ensure_champion(ctx: LabContext, n: Narrator | None = None) -> str:
    """The champion's version, training the first model if the registry has none."""
    from pipelines.training_steps import run_training

    ensure_raw_data(ctx, n)
    aliases = current_aliases(ctx.settings)
    if "champion" in aliases:
        return aliases["champion"]
    if n:
        n.say("no champion yet: training the first model (it becomes champion)")
    outcome = run_training(ctx.settings, ctx.params)
    if outcome.version is None:
        raise RuntimeError(f"the first model was rejected: {outcome.gate.get('reasons')}")
    return outcome.version


def with_hyperparams(params: Params, **hyperparams: Any) -> Params:
    """A copy of params with some estimator hyperparameters overridden (params are frozen)."""
    train = params.train.model_copy(update={"hyperparams": {**params.train.hyperparams, **hyperparams}})
    return params.model_copy(update={"train": train})


def show_outcome(n: Narrator, outcome: TrainingOutcome) -> None:
    """Print a training outcome through the narrator's console."""
    print_outcome(outcome, n.console)


VERSION_COLUMNS = ["version", "aliases", "gate", "status", "accuracy"]


def version_rows(settings: Settings, last: int = 6) -> list[list[str]]:
    """The newest registry versions as table rows (VERSION_COLUMNS)."""
    rows = [
        [
            v.version,
            ", ".join(v.aliases) or "-",
            v.gate_status,
            v.status,
            "-" if v.accuracy is None else f"{v.accuracy:.4f}",
        ]
        for v in list_versions(settings)
    ]
    return rows[-last:]
