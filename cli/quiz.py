"""CLI command for self-testing: ``quiz``.

Concept: active recall on the concept catalog. ``mlops-lab quiz`` asks one question, reads the
answer (typed, or ``--answer`` for scripts and tests) and shows which key points of a strong answer
it covered, by the keyword rule of ``lab/quiz.py`` (printed with the result, so the score is never
a mystery), then points to ``explain`` and the demo. A thin shell: picking and scoring are pure
functions in ``lab/quiz.py``; only typer, rich and the stdlib are imported at the top.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/bold red] {escape(message)}")
    return typer.Exit(code=1)


def _read_answer(console: Console) -> str:
    """Lines from stdin until an empty line or end of input."""
    console.print("[dim]Type your answer; finish with an empty line (or Ctrl-D).[/dim]")
    lines: list[str] = []
    for line in sys.stdin:
        if not line.strip():
            break
        lines.append(line.rstrip("\n"))
    return "\n".join(lines)


def quiz(
    query: Annotated[
        str | None, typer.Argument(help="Concept id (C21), slug or title words; omit for any concept.")
    ] = None,
    answer: Annotated[
        str | None, typer.Option("--answer", "-a", help="Your answer, instead of typing it (for scripts).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Pick the same question every time.")] = None,
) -> None:
    """Ask one catalog question, then show which key points your answer covered and which it missed."""
    from lab.catalog import UnknownConceptError, find, load_catalog
    from lab.quiz import DEFAULT_THRESHOLD, RULE, pick_question, score_answer

    try:
        pool = [find(query)] if query else load_catalog()
        question = pick_question(pool, seed)
    except (UnknownConceptError, ValueError) as err:
        raise _fail(str(err)) from None
    c = question.concept
    console = Console()
    console.print(Panel(escape(question.text), title=f"{c.id} {escape(c.title)}", title_align="left"))
    text = answer if answer is not None else _read_answer(console)
    result = score_answer(text, c.key_points, DEFAULT_THRESHOLD)

    table = Table(title=f"Key points: {len(result.covered)} of {len(result.points)} covered", title_justify="left")
    table.add_column("#", no_wrap=True, justify="right")
    table.add_column("", no_wrap=True)
    table.add_column("terms", no_wrap=True, justify="right")
    table.add_column("key point")
    for number, p in enumerate(result.points, start=1):
        mark = "[green]covered[/green]" if p.covered else "[red]missed[/red]"
        table.add_row(str(number), mark, f"{len(p.found)}/{len(p.terms)}", escape(p.point))
    console.print(table)
    if result.missed:
        console.print("[bold]Terms your answer did not use[/bold] (as stems), per missed point:")
        for number, p in enumerate(result.points, start=1):
            if not p.covered:
                absent = [t for t in p.terms if t not in p.found]
                console.print(f"  {number}. {escape(', '.join(absent))}")
    console.print(f"[dim]Rule: {escape(RULE.format(pct=DEFAULT_THRESHOLD * 100))}[/dim]")
    console.print(f"[bold]Read the full answer:[/bold] mlops-lab explain {c.id}")
    console.print(f"[bold]See it run:[/bold] {escape(c.demo)}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command()(quiz)
