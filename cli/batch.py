"""CLI command: `mlops-lab batch-score`, a large file scored offline by a registered version.

Concept: batch inference at scale (C61). A thin shell over ``flows/batch_scoring_flow.py``: it reads the
settings (``MLOPS_BATCH_RUNNER``, ``MLOPS_BATCH_WORKERS``, ``MLOPS_DASK_ADDRESS``, each also an option here),
runs the ``batch-scoring`` flow and prints what it did. Run it again on the same folder to resume: finished
chunks are skipped. ``mlops-lab generate-batch clean --for-scoring -o FILE.parquet --rows 1000000`` makes an input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from core.exit_codes import EXIT_FAILED

console = Console()


def batch_score(
    source: Annotated[Path, typer.Argument(help="The file to score: .csv or .parquet with the contract's columns.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder of the Parquet part files (resumable).")],
    alias: Annotated[str, typer.Option(help="Registry alias to score with.")] = "champion",
    version: Annotated[str | None, typer.Option(help="Registry version to score with (instead of the alias).")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Go on with the version the folder's job pinned, wherever the alias is.")
    ] = False,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows per chunk (one task, one part file).")] = 100_000,
    max_chunks: Annotated[
        int | None, typer.Option(min=1, help="Score at most this many chunks in this run (the rest on the next).")
    ] = None,
    runner: Annotated[
        Literal["dask", "threads"] | None,
        typer.Option(help="Where chunks run (default MLOPS_BATCH_RUNNER): dask or threads of this process."),
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="Workers (default MLOPS_BATCH_WORKERS).")] = None,
    dask_address: Annotated[
        str | None, typer.Option(help="A running Dask scheduler, tcp://host:8786 (default MLOPS_DASK_ADDRESS).")
    ] = None,
) -> None:
    """Score a large file in chunks with a registered model: Parquet parts with version and lineage, resumable."""
    from core.context import load_context
    from core.startup import configure_runtime
    from flows.batch_scoring import BatchError, pending_chunks
    from flows.batch_scoring_flow import run_batch_scoring
    from pipelines.model_files import UntrustedModelError
    from serving.contract import RequestContract

    ctx = load_context()
    chosen = {"batch_runner": runner, "batch_workers": workers, "dask_address": dask_address}
    settings = ctx.settings.model_copy(update={k: v for k, v in chosen.items() if v is not None})
    configure_runtime(settings)
    contract = RequestContract.from_dataset(ctx.params.dataset)
    model_alias, model_version = (None, None) if resume else (None if version else alias, version)
    try:
        job, summary = run_batch_scoring(
            settings, contract, source, output, model_alias, model_version, chunk_rows, max_chunks
        )
    except (BatchError, UntrustedModelError) as err:
        console.print(f"[bold red]refused:[/bold red] {escape(str(err))}")
        raise typer.Exit(EXIT_FAILED) from None
    if summary is None:
        left = len(pending_chunks(job))
        console.print(
            f"[yellow]stopped early[/yellow]: {job.chunks - left} of {job.chunks} chunks done (v{job.version}); "
            "run the same command again to score the rest"
        )
        return
    console.print(f"[bold green]done[/bold green]: {escape(summary.line())}")
    console.print(f"output: {escape(str(output))}/part-*.parquet; lineage and totals in _manifest.json")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("batch-score")(batch_score)
