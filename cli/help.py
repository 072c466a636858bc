"""Help that reads well at 80 columns: ``-h`` as well as ``--help``, and command lists that never cut a sentence.

Click shortens each command's help in a group's command list to fit the line and ends it with "...",
often mid-sentence ("Write the raw dataset (dataset.path in params.yaml)..."). `SentenceHelpGroup`
lists each command with its whole first sentence instead and lets the formatter wrap it.
"""

from __future__ import annotations

import re
from typing import Any

from typer.core import TyperGroup

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}


def first_sentence(text: str) -> str:
    """The first sentence of a help text (up to a full stop followed by a space or the end), whitespace folded."""
    folded = " ".join(text.split("\n\n", 1)[0].split())
    match = re.search(r"(?<!\be\.g)(?<!\bi\.e)\.(\s|$)", folded)
    return folded[: match.start() + 1] if match else folded


class SentenceHelpGroup(TyperGroup):
    """A Typer group whose command list shows each command's whole first sentence, wrapped, never cut."""

    # Typer vendors its own click (typer._click, private): the context and formatter are typed Any here.
    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, first_sentence(command.short_help or command.help or "")))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def group_settings(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for every ``typer.Typer`` of the CLI: the group class and ``-h``."""
    return {"cls": SentenceHelpGroup, "context_settings": HELP_OPTIONS} | overrides
