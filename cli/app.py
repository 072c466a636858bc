"""The one command line: ``mlops-lab``.

Each command is a thin shell over a core function. Heavy libraries (mlflow, prefect,
great_expectations, sklearn, evidently) are imported inside the commands, so ``--help`` is instant.
Command groups live in ``cli/``; each module registers its own commands here.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli import (
    admin,
    ask,
    bench,
    catalog,
    data,
    db,
    generated,
    images,
    labs,
    monitor,
    ops,
    quiz,
    registry,
    rollout,
    serve,
    shadow,
    stages,
    traffic,
    training,
)
from cli.help import group_settings

app = typer.Typer(
    **group_settings(),
    name="mlops-lab",
    help="A runnable MLOps reference implementation: train, gate, register, serve, monitor, retrain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: drawing rich panels costs ~0.3 s, and --help must be instant
)


def _print_version(asked: bool) -> None:
    if asked:
        import platform
        from importlib.metadata import version

        typer.echo(f"mlops-lab {version('mlops-lab')} (Python {platform.python_version()})")
        raise typer.Exit()


@app.callback()
def configure(
    _version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Before any command: the libraries' environment from the settings (Prefect reads its own on import)."""
    from core.settings import Settings
    from core.startup import configure_environment

    configure_environment(Settings())


COMMAND_MODULES = (data, training, stages, registry, rollout, serve, traffic, monitor, shadow, admin, ops, db, images)
for module in (*COMMAND_MODULES, catalog, ask, quiz, labs, bench, generated):
    module.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()
