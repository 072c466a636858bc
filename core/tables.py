"""Tables that stay readable at 80 columns: a table where the terminal is wide, stacked blocks where it is not.

A rich table squeezed into 80 columns cuts identifiers (``prediction_dri…``) and wraps a sentence into a
column three words wide. Below ``STACK_BELOW`` columns each row prints as a block instead: one headline
with the short fields, never cut, and the long text on its own indented lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

STACK_BELOW = 100  # columns: below this, rows print as stacked blocks


def print_rows(
    out: Console,
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    named: Sequence[str] = (),
) -> None:
    """Print ``rows`` (rich markup allowed) under ``title``; the last column is the long text.

    In a stacked block the headline joins the other columns with `` · ``; those listed in ``named`` are
    shown as ``name value`` (a bare number means nothing without its name).
    """
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    if out.width >= STACK_BELOW:
        table = Table(title=title, title_justify="left")
        for i, column in enumerate(header):
            table.add_column(column, no_wrap=i < len(header) - 1)  # identifiers whole; the text column wraps
        for row in rows:
            table.add_row(*row)
        out.print(table)
        return
    out.print(Text(title, style="italic"))
    for row in rows:
        fields = [
            f"{name} {value}" if name in named else value for name, value in zip(header[:-1], row[:-1], strict=True)
        ]
        out.print(" · ".join(fields), overflow="fold")
        out.print(Padding(Text.from_markup(row[-1]), (0, 0, 0, 2)))
