"""A training run as people read it: status, version and alias, the metrics beside the champion's, the gate.

Shared by ``mlops-lab train`` and the narrated demos.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from pipelines.training_steps import TrainingOutcome


def print_outcome(outcome: TrainingOutcome, out: Console | None = None) -> None:
    """Readable summary of one training run (shared by the CLI and the demos)."""
    from rich.markup import escape
    from rich.table import Table

    out = out or Console()
    colour = "green" if outcome.status == "registered" else "red"
    out.print(f"[bold {colour}]{outcome.status}[/bold {colour}]  run {outcome.run_id}")
    if outcome.version:
        out.print(f"registered version [bold]{outcome.version}[/bold] as alias [bold]{outcome.alias}[/bold]")
    table = Table("metric", "candidate", "champion", title="held-out test set", title_justify="left")
    champion = outcome.champion_metrics or {}
    for key in ("accuracy", "f1_macro", "log_loss"):
        table.add_row(key, f"{outcome.metrics[f'test_{key}']:.4f}", f"{champion[key]:.4f}" if key in champion else "-")
    table.add_row("cv_accuracy_mean", f"{outcome.metrics['cv_accuracy_mean']:.4f}", "-")
    out.print(table)
    for reason in outcome.gate.get("reasons", []):
        out.print(f"  gate: {reason}")
    for check in outcome.gate.get("advisory", []):  # reported, never a reason to reject (the ONNX parity check)
        out.print(f"  advisory {check['name']}: {escape(str(check['detail']))}", soft_wrap=True)
