"""CLI commands that regenerate committed files from their sources: ``docs`` and ``capacity``.

The concept pages, cheat sheets and comparison pages are generated from lab/catalog.yaml (and
lab/comparisons.yaml), docs/questions.md from lab/questions.yaml, the capacity plan and the prod overlay's
sizing patch from docs/benchmarks.md and k8s/capacity.yaml. Tests fail when a committed file
differs from what these commands would write, so a change to the source and to its output land together.
"""

from __future__ import annotations

import typer

from core.paths import REPO


def docs() -> None:
    """Regenerate the concept pages, cheat sheets, comparison pages and the question index (docs/questions.md)."""
    from lab import cheat_sheets, comparisons, concept_docs, question_docs

    for name, module in (("concept pages", concept_docs), ("cheat sheets", cheat_sheets)):
        written = module.write_all()
        typer.echo(f"wrote {len(written)} {name} to {module.OUT_DIR.relative_to(REPO)}/")
    written = comparisons.write_all()
    typer.echo(
        f"wrote {len(written)} comparison files (pages and the PSI plot) to {comparisons.OUT_DIR.relative_to(REPO)}/"
    )
    for path in question_docs.write_all():
        typer.echo(f"wrote {path.relative_to(REPO)} (the interview questions, from lab/questions.yaml)")


def capacity() -> None:
    """Plan replicas, CPU and cost from docs/benchmarks.md; write docs/capacity.md, its picture and the prod patch."""
    from ops.capacity_docs import write_capacity_docs

    typer.echo(write_capacity_docs())


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("docs")(docs)
    app.command("capacity")(capacity)
