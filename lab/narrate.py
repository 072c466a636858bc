"""Narration for demos: say what happens, why it matters and where the code is.

Demos are read live in interviews and workshops, so every demo speaks through this one small
vocabulary instead of scattered prints.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.panel import Panel
from rich.table import Table


class Narrator:
    """Rich output for a demo; `console` is injectable so tests can capture the text."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._step = 0

    def title(self, text: str, concept: str = "") -> None:
        label = f"[bold]{text}[/bold]" + (f"  [dim]{concept}[/dim]" if concept else "")
        self.console.print(Panel(label, expand=False))

    def step(self, text: str) -> None:
        self._step += 1
        self.console.print(f"\n[bold cyan]{self._step}.[/bold cyan] {text}")

    def say(self, text: str) -> None:
        self.console.print(f"   {text}")

    def why(self, text: str) -> None:
        self.console.print(f"   [green]why:[/green] {text}")

    def code(self, *paths: str) -> None:
        self.console.print("   [magenta]code:[/magenta] " + ", ".join(paths))

    def ok(self, text: str) -> None:
        self.console.print(f"   [bold green]✔[/bold green] {text}")

    def bad(self, text: str) -> None:
        self.console.print(f"   [bold red]✘[/bold red] {text}")

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        tbl = Table(title=title, title_justify="left")
        for col in columns:
            tbl.add_column(col)
        for row in rows:
            tbl.add_row(*(str(v) for v in row))
        self.console.print(tbl)
