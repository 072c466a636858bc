"""CLI commands for data: ingest, generate-batch and validate.

Concept: data versioning (C05), data validation (C06), data quality as code (C07). These are thin
shells: ``pipelines.data`` ingests, ``pipelines.batches`` fabricates production batches and
``pipelines.validation`` checks them. ``validate`` exits 1 on invalid data so CI, the DVC
``validate`` stage and shell scripts can gate on it; ``--json`` keeps a machine-readable record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from core.exit_codes import EXIT_INVALID_DATA
from pipelines.batches import (
    BatchKind,  # stdlib-only at import time, so --help stays instant
    write_batch,
)
from pipelines.batches import generate_batch as generate
from pipelines.validation import validate_file

if TYPE_CHECKING:
    from core.context import LabContext
    from pipelines.validation import ValidationResult

console = Console()


def _raw_path(ctx: LabContext) -> Path:
    return ctx.settings.resolve(ctx.params.dataset.path)


def ingest() -> None:
    """Write the raw dataset and the gate's holdout (gate.holdout) from scikit-learn's bundled copy; print md5s."""
    from core.context import load_context
    from pipelines.data import file_md5
    from pipelines.data import ingest as ingest_raw
    from pipelines.holdout import write_holdout

    ctx = load_context()
    path = ingest_raw(ctx.params.dataset, ctx.params.ingest, _raw_path(ctx))
    console.print(f"wrote [bold]{escape(str(path))}[/bold]  md5 {file_md5(path)}")
    hp = ctx.params.gate.holdout
    held = write_holdout(ctx.params.dataset, ctx.params.ingest, hp.fraction, hp.seed, ctx.settings.resolve(hp.path))
    console.print(f"wrote [bold]{escape(str(held))}[/bold]  md5 {file_md5(held)} (holdout: never trained on)")


def print_result(result: ValidationResult, out: Console | None = None) -> None:
    """The validation report: verdict, a table of failed expectations, the Data Docs path."""
    from core.tables import print_rows

    out = out or console
    total = result.statistics.get("evaluated", 0)
    if result.success:
        out.print(f"[bold green]valid[/bold green]: {escape(result.batch)} meets all {total} expectations")
    else:
        out.print(
            f"[bold red]invalid[/bold red]: {escape(result.batch)} broke "
            f"{len(result.failures)} of {total} expectations (suite {escape(result.suite)})"
        )
        rows = []
        for f in result.failures:
            examples = ", ".join(repr(v) for v in f.examples if v is not None)
            wrong = f"{f.detail} (e.g. {examples})" if examples else f.detail
            rows.append([escape(f.expectation), escape(f.column or "(table)"), escape(wrong)])
        print_rows(out, "failed expectations", ("expectation", "column", "what is wrong"), rows)
    if result.docs_path:
        out.print(f"Data Docs: {escape(result.docs_path.as_uri())}")


def generate_batch(
    kind: Annotated[
        BatchKind, typer.Argument(help="What kind of batch to fabricate.", metavar="KIND", show_default=False)
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to write.")],
    rows: Annotated[int | None, typer.Option(help="Rows (default: batches.rows in params.yaml).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same batch.")] = 0,
    with_source: Annotated[bool, typer.Option(help="Add the optional dataset.group_column (sites).")] = False,
    for_scoring: Annotated[
        bool,
        typer.Option(help="An input for batch-score: no label, a specimen_id first, repeated rows allowed (any size)."),
    ] = False,
) -> None:
    """Write a synthetic production batch (CSV, or Parquet for a .parquet name): clean, shifted, or one defect."""
    from core.context import load_context
    from pipelines.data import ingest as ingest_raw
    from pipelines.data import read_csv

    ctx = load_context()
    raw = _raw_path(ctx)
    if not raw.exists():
        console.print(f"no reference data yet: ingesting {escape(str(raw))}")
        ingest_raw(ctx.params.dataset, ctx.params.ingest, raw)
    try:
        frame = generate(
            kind, read_csv(raw), ctx.params, rows=rows, seed=seed, with_source=with_source,
            unique_rows=False if for_scoring else None,
        )  # fmt: skip
    except ValueError as err:
        console.print(f"[red]{escape(str(err))}[/red]")
        raise typer.Exit(2) from err
    if for_scoring:
        frame = frame.drop(columns=[ctx.params.dataset.target], errors="ignore")
        frame.insert(0, "specimen_id", range(len(frame)))
    path = write_batch(frame, output, kind, ctx.params.dataset.decimals)
    console.print(
        f"wrote {kind.value} batch: {len(frame)} rows x {frame.shape[1]} columns -> [bold]{escape(str(path))}[/bold]"
    )


def validate(
    path: Annotated[Path, typer.Argument(help="CSV file to validate.", exists=True, dir_okay=False)],
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write a JSON summary here.")] = None,
) -> None:
    """Validate a CSV against the data contract in params.yaml; exit 1 if it is invalid."""
    from core.context import load_context

    ctx = load_context()
    result = validate_file(path, ctx.params.dataset, docs_dir=ctx.settings.gx_dir)
    print_result(result)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        # No Data Docs path in the file: it is machine-specific, and DVC compares this file across clones.
        record = {k: v for k, v in result.to_dict().items() if k != "docs_path"}
        json_out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    if not result.success:
        raise typer.Exit(EXIT_INVALID_DATA)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command()(ingest)
    app.command("generate-batch")(generate_batch)
    app.command()(validate)
