"""CLI commands for the workshop labs: ``lab list``, ``show N``, ``setup N`` and ``check N``.

Concept: exercises with a checker. ``lab show`` prints a lab's page (goals, steps, expected
output); ``lab setup`` starts the lab (and prepares its scenario); the learner runs the steps;
``lab check`` reads the state those steps left since the start and prints each condition as met
or not, with a hint for the first thing to do next. It exits 0 when every
condition is met and 1 otherwise, so an instructor can script it over a room of laptops. A thin
shell over ``lab/labs``; only typer, rich and the stdlib are imported at the top.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table

from cli.help import group_settings

lab_app = typer.Typer(
    **group_settings(),
    help="Workshop labs: `mlops-lab lab setup N` starts one, do the steps, `mlops-lab lab check N` "
    "verifies the result.",
)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/bold red] {escape(message)}")
    return typer.Exit(code=1)


@lab_app.command("list")
def list_labs() -> None:
    """List the labs: number, title, the concepts they practise and their page."""
    from lab.labs import LABS

    table = Table(title="Workshop labs", title_justify="left")
    for column in ("#", "title", "concepts", "page"):
        table.add_column(column, no_wrap=column != "title")
    for lab in LABS.values():
        table.add_row(str(lab.number), escape(lab.title), ", ".join(lab.concepts), lab.doc)
    Console().print(table)
    Console().print(
        "[dim]`mlops-lab lab show N` prints a lab, `mlops-lab lab setup N` starts it, "
        "`mlops-lab lab check N` checks your result.[/dim]"
    )


@lab_app.command("show")
def show(number: Annotated[int, typer.Argument(help="Lab number, e.g. 1.")]) -> None:
    """Print a lab's page: goals, steps and the output to expect."""
    from core.settings import Settings
    from lab.labs import UnknownLabError, get_lab

    try:
        lab = get_lab(number)
    except UnknownLabError as err:
        raise _fail(str(err)) from None
    page = Settings().project_dir / lab.doc
    if not page.is_file():
        raise _fail(f"{lab.doc} is missing; run this from the repository (or set MLOPS_PROJECT_DIR)")
    Console().print(Markdown(page.read_text(encoding="utf-8")))


@lab_app.command("setup")
def setup(number: Annotated[int, typer.Argument(help="Lab number, e.g. 3.")]) -> None:
    """Start a lab: from now on its check counts only what you do; prepares its scenario (e.g. a bad challenger)."""
    from core.context import load_context
    from lab.labs import UnknownLabError, get_lab, run_setup

    try:
        get_lab(number)
    except UnknownLabError as err:
        raise _fail(str(err)) from None
    console = Console()
    for line in run_setup(number, load_context()):
        console.print(f"  • {escape(line)}")


@lab_app.command("check")
def check(
    number: Annotated[int, typer.Argument(help="Lab number, e.g. 1.")],
    answer: Annotated[
        str | None, typer.Option("--answer", "-a", help="Your conclusion, for labs that ask for one.")
    ] = None,
) -> None:
    """Check a lab against the real state (registry, logs, reports); exit 1 with hints if not done."""
    from core.context import load_context
    from lab.labs import UnknownLabError, get_lab, run_check

    try:
        lab = get_lab(number)
    except UnknownLabError as err:
        raise _fail(str(err)) from None
    checks = run_check(number, load_context(), answer)
    console = Console()
    table = Table(title=f"Lab {lab.number}: {escape(lab.title)}", title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("condition")
    table.add_column("found")
    for c in checks:
        mark = "[green]met[/green]" if c.passed else "[red]not yet[/red]"
        table.add_row(mark, escape(c.name), escape(c.detail))
    console.print(table)
    missing = [c for c in checks if not c.passed]
    if not missing:
        console.print(f"[bold green]Lab {lab.number} done:[/bold green] every condition is met.")
        return
    console.print(f"[bold]{len(missing)} of {len(checks)} conditions not met yet.[/bold] Hints:")
    for c in missing:
        console.print(f"  • {escape(c.name)}: {escape(c.hint)}")
    raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add the ``lab`` command group to the CLI."""
    app.add_typer(lab_app, name="lab")
