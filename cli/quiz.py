"""CLI command for self-testing: ``quiz``.

Concept: active recall on the concept catalog. ``mlops-lab quiz`` asks one question, reads the
answer (typed, or ``--answer`` for scripts and tests) and grades it against that question's rubric
(``lab/quiz.py``): the grade, each rubric point met or missed in words, the model answer, the rule
(printed with the result, so the grade is never a mystery), then ``explain`` and the demo. A thin
shell: picking and grading are pure functions in ``lab/``; only typer, rich and the stdlib are
imported at the top.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

_GRADE_STYLE = {"good": "green", "partial": "yellow", "weak": "red", "keyword list": "red", "no answer": "red"}
_GRADE_NOTE = {
    "no answer": "Nothing to grade: say it in a few sentences, as you would to an interviewer.",
    "keyword list": "This reads as a list of terms, not sentences, so it scores nothing: say how the terms "
    "connect, as you would to an interviewer.",
}


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
    """Ask one catalog question, grade your answer against its rubric and show the model answer."""
    from lab.catalog import UnknownConceptError, find, load_catalog
    from lab.quiz import RULE, grade_answer, pick_question
    from lab.quiz_rubrics import RubricError, rubric_for

    try:
        pool = [find(query)] if query else load_catalog()
        question = pick_question(pool, seed)
        rubric = rubric_for(question.concept.id, question.index)
    except (UnknownConceptError, ValueError, RubricError) as err:
        raise _fail(str(err)) from None
    c = question.concept
    console = Console()
    console.print(Panel(escape(question.text), title=f"{c.id} {escape(c.title)}", title_align="left"))
    text = answer if answer is not None else _read_answer(console)
    result = grade_answer(text, rubric)

    style = _GRADE_STYLE[result.grade]
    console.print(
        f"[bold]Grade: [{style}]{result.grade}[/{style}][/bold] "
        f"(rubric: {len(result.met)} of {len(result.points)} points met)"
    )
    if result.grade in _GRADE_NOTE:
        console.print(escape(_GRADE_NOTE[result.grade]))
    table = Table(title="What a good answer to this question says", title_justify="left")
    table.add_column("#", no_wrap=True, justify="right")
    table.add_column("", no_wrap=True)
    table.add_column("point")
    graded = result.grade not in _GRADE_NOTE
    for number, p in enumerate(result.points, start=1):
        mark = "[green]met[/green]" if p.met else "[red]missed[/red]" if graded else "[dim]not graded[/dim]"
        table.add_row(str(number), mark, escape(p.text))
    console.print(table)
    console.print(f"[bold]Model answer:[/bold] {escape(rubric.model_answer)}")
    console.print(f"[dim]Rule: {escape(RULE)}[/dim]")
    console.print(f"[bold]Read the full answer:[/bold] mlops-lab explain {c.id}")
    console.print(f"[bold]See it run:[/bold] {escape(c.demo)}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command()(quiz)
