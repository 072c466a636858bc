"""CLI command ``ask``: type an interview question in your own words, get the answer and where it runs.

Concept: every interview question has a way in. A thin shell over ``lab/ask.py``: it finds the nearest
questions of the index (lab/questions.yaml), prints the best one's answer (its concepts' one-line
answers and key points, or its prose answer), the demo command and the code paths, then names the
runners-up. Laid out for an 80-column terminal. The index and the search load inside the command, so
``mlops-lab --help`` stays instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

if TYPE_CHECKING:
    from lab.ask import Match

WIDTH = 80


MAX_PATHS = 8  # the rest are one `mlops-lab explain` away


def _indent(text: str, left: int = 2) -> Padding:
    return Padding(text, (0, 0, 0, left), expand=False)  # expand=False: no trailing spaces to the width


def _bullets(items: list[str], left: int = 4) -> Padding:
    """A list whose wrapped lines hang under the text, not under the bullet."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for item in items:
        grid.add_row("•", item)
    return Padding(grid, (0, 0, 0, left), expand=False)


def _print_best(console: Console, best: Match, key_points: bool) -> None:
    from lab.ask import code_paths

    q = best.question
    console.print(f"[bold]{q.id}[/bold] [dim]· {escape(q.topic)}[/dim]")
    console.print(_indent(f"[bold]{escape(q.ask)}[/bold]"))
    if best.paraphrases:
        console.print(_indent(f"[dim]also asked as {', '.join(best.paraphrases)}[/dim]"))
    console.print("[bold cyan]Answer[/bold cyan]")
    if q.answer:
        console.print(_indent(escape(q.answer)))
    for i, c in enumerate(best.concepts):
        console.print(_indent(f"[bold]{c.id}[/bold] {escape(c.answer)}"))
        if key_points and i == 0 and not q.answer:  # the first concept's key points when no prose answers it
            console.print(_bullets([escape(p) for p in c.key_points]))
    if best.demo:
        console.print(f"[bold cyan]Demo[/bold cyan]  mlops-lab demo {escape(best.demo)}")
    paths = code_paths(best)
    if paths:
        console.print("[bold cyan]Code[/bold cyan]")
        for ref in paths[:MAX_PATHS]:
            console.print(_indent(f"[magenta]{escape(ref)}[/magenta]"))
        if len(paths) > MAX_PATHS:
            console.print(_indent(f"[dim]and {len(paths) - MAX_PATHS} more (below)[/dim]"))
    if best.concepts:
        more = " or ".join(f"`mlops-lab explain {c.id}`" for c in best.concepts[:2])
        console.print(f"[dim]More: {escape(more)}[/dim]")


def ask(
    question: Annotated[
        str, typer.Argument(help='Your question in your own words, e.g. "how do you roll back a model?"')
    ],
    top: Annotated[int, typer.Option(min=1, max=10, help="How many matching questions to list.")] = 3,
    brief: Annotated[bool, typer.Option("--brief", help="One-line answers only, no key points.")] = False,
) -> None:
    """Find the interview questions nearest to yours and print the answer, the demo and the code paths."""
    from lab.ask import ask as search

    console = Console(width=min(Console().width, WIDTH))
    matches = search(question, top=top)
    if not matches:
        console.print(
            f"Nothing in the question index is close to {escape(repr(question))}. "
            "Try other words, `mlops-lab concepts` for the topics covered, or docs/questions.md for every question."
        )
        raise typer.Exit(code=1)
    _print_best(console, matches[0], key_points=not brief)
    if len(matches) > 1:
        console.print("[bold]Also close[/bold]  [dim](`mlops-lab ask` with more words narrows it)[/dim]")
        for m in matches[1:]:
            ids = " ".join(c.id for c in m.concepts) or "prose answer"
            console.print(_indent(f"{m.question.id} {escape(m.question.ask)} [dim]({ids})[/dim]"))


def register(app: typer.Typer) -> None:
    """Add this module's command to the CLI."""
    app.command()(ask)
