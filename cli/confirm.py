"""Asking before a command destroys something: one question, and "no" unless the person says yes."""

from __future__ import annotations

import typer
from rich.console import Console

from core.exit_codes import EXIT_FAILED


def confirm_or_exit(console: Console, question: str, declined: str) -> None:
    """Ask ``question``; on no, or on end of input (no answer is a no), print ``declined`` and exit 1."""
    try:
        confirmed = typer.confirm(question, default=False)
    except typer.Abort:
        confirmed = False
    if not confirmed:
        console.print(f"{declined} (add --yes to skip the question)")
        raise typer.Exit(EXIT_FAILED)
