"""CLI commands: ``stage train | evaluate``, the entry points ``dvc.yaml`` calls.

Concept: data + model version control (C05). DVC runs each stage as a shell command and hashes
its declared outputs; these commands are that command. They are thin shells over
``pipelines/dvc_stages.py``, which reuses the training core of the Prefect flow, so ``dvc repro``
and ``mlops-lab train`` cannot drift apart. Default paths are those declared in ``dvc.yaml``;
options override them for ad-hoc runs. Missing inputs end with a one-line message and exit 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from cli.help import group_settings

MODEL_PATH = Path("models/pipeline.skops")
TRAIN_METRICS_PATH = Path("metrics/train.json")
EVAL_METRICS_PATH = Path("metrics/eval.json")
CONFUSION_PATH = Path("metrics/confusion.csv")

stage_app = typer.Typer(
    **group_settings(),
    help="DVC pipeline stages (run by `dvc repro`; see dvc.yaml).",
    no_args_is_help=True,
)
console = Console()

DataOpt = Annotated[Path | None, typer.Option(help="Dataset CSV (default: dataset.path in params.yaml).")]
ModelOpt = Annotated[Path, typer.Option(help="Model file (skops).")]


def _fail(err: Exception) -> NoReturn:
    Console(stderr=True).print(f"[bold red]error:[/bold red] {escape(str(err))}")
    raise typer.Exit(code=1)


@stage_app.command("train")
def train_cmd(
    data: DataOpt = None,
    model: ModelOpt = MODEL_PATH,
    metrics: Annotated[Path, typer.Option(help="Cross-validation metrics JSON.")] = TRAIN_METRICS_PATH,
) -> None:
    """Fit the pipeline on the seeded training split; save the model and the CV metrics."""
    from core.context import load_context
    from pipelines.dvc_stages import train_stage

    ctx = load_context()
    s = ctx.settings
    try:
        train_stage(
            ctx.params,
            s.resolve(data or ctx.params.dataset.path),
            s.resolve(model),
            s.resolve(metrics),
            holdout_path=s.resolve(ctx.params.gate.holdout.path),
        )
    except FileNotFoundError as err:
        _fail(err)
    console.print(f"[green]✔[/green] model → {escape(str(model))}, cross-validation metrics → {escape(str(metrics))}")


@stage_app.command("evaluate")
def evaluate_cmd(
    data: DataOpt = None,
    model: ModelOpt = MODEL_PATH,
    metrics: Annotated[Path, typer.Option(help="Held-out metrics JSON.")] = EVAL_METRICS_PATH,
    plot: Annotated[
        Path, typer.Option(help="Confusion rows CSV (actual, predicted) for `dvc plots`.")
    ] = CONFUSION_PATH,
) -> None:
    """Score the saved model on the same seeded held-out rows; write metrics and confusion rows."""
    from core.context import load_context
    from pipelines.dvc_stages import evaluate_stage
    from pipelines.model_files import UntrustedModelError

    ctx = load_context()
    s = ctx.settings
    try:
        scores = evaluate_stage(
            ctx.params,
            s.resolve(data or ctx.params.dataset.path),
            s.resolve(model),
            s.resolve(metrics),
            s.resolve(plot),
            holdout_path=s.resolve(ctx.params.gate.holdout.path),
        )
    except (FileNotFoundError, UntrustedModelError) as err:
        _fail(err)
    console.print(
        f"[green]✔[/green] test accuracy {scores['test_accuracy']:.4f}, f1 macro {scores['test_f1_macro']:.4f}"
        f" → {escape(str(metrics))}"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.add_typer(stage_app, name="stage")
