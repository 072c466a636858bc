"""What one monitoring run found and did, and how it reads: the findings, the decision, the retrain.

`MonitoringOutcome` is what the ``monitoring`` flow returns. One rendering serves every place a run is
shown: the Prefect table artifact (`findings_table`), ``mlops-lab monitor`` and the demos (`print_monitoring`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from core.findings import Finding
    from flows.retraining_flow import RetrainOutcome
    from monitoring.retrain_plan import Decision


@dataclass
class MonitoringOutcome:
    """One monitoring run: what every check found, the decision, and the retrain it started (if any)."""

    findings: list[Finding]
    decision: Decision
    report_dir: str
    mlflow_run_id: str | None = None
    retrain: RetrainOutcome | None = None
    notes: list[str] = field(default_factory=list)

    def by_check(self) -> dict[str, Finding]:
        return {f.check: f for f in self.findings}


def findings_table(findings: list[Finding]) -> list[dict[str, str]]:
    """One row per check, for the Prefect table artifact and the CLI."""
    return [
        {
            "check": f.check,
            "status": f.status,
            "score": "-" if f.score is None else f"{f.score:.3g}",
            "threshold": "-" if f.threshold is None else f"{f.threshold:.3g}",
            "rows": str(f.rows),
            "summary": f.summary,
        }
        for f in findings
    ]


def print_monitoring(outcome: MonitoringOutcome, out: Console | None = None) -> None:
    """The findings table, the decision and the retrain outcome (shared by the CLI and the demos)."""
    from core.tables import print_rows

    out = out or Console()
    colour = {"ok": "green", "fired": "red", "inconclusive": "yellow"}
    header = ("check", "status", "score", "threshold", "rows", "summary")
    rows = [
        [
            r["check"],
            f"[{colour[r['status']]}]{r['status']}[/]",
            r["score"],
            r["threshold"],
            r["rows"],
            escape(r["summary"]),
        ]
        for r in findings_table(outcome.findings)
    ]
    print_rows(out, "monitoring", header, rows, named=("score", "threshold", "rows"))
    for note in outcome.notes:
        out.print(f"reference: {escape(note)}")
    out.print(f"reports: {outcome.report_dir}  (MLflow run {outcome.mlflow_run_id})")
    verdict = "[bold red]retrain[/]" if outcome.decision.retrain else "[bold green]no retrain[/]"
    out.print(f"decision: {verdict} - {escape(outcome.decision.reason)}")
    if outcome.retrain is not None:
        out.print(f"retrain: [bold]{outcome.retrain.status}[/] - {escape(outcome.retrain.reason)}")
