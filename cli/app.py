"""The one command line: ``mlops-lab``.

Each command is a thin shell over a core function. Heavy libraries (mlflow, prefect,
great_expectations, sklearn, evidently) are imported inside the commands, so ``--help`` is instant.
Command groups live in ``cli/``; each module registers its own commands here.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli import (
    admin,
    ask,
    batch,
    bench,
    catalog,
    data,
    dataset,
    db,
    explanations,
    features,
    generated,
    images,
    labs,
    monitor,
    ops,
    privacy,
    quiz,
    registry,
    rollout,
    serve,
    shadow,
    stages,
    stream,
    traffic,
    training,
)
from cli.help import group_settings
from core.exit_codes import EXIT_INVALID_PARAMS


class _App(typer.Typer):
    """The console entry point: a params file that does not hold together ends in its list of problems."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from core.params_check import ParamsError, ParamsFileNotFound

        try:
            return super().__call__(*args, **kwargs)
        except ParamsError as err:  # every problem, one per line, and no traceback
            typer.echo(str(err), err=True)
            raise SystemExit(EXIT_INVALID_PARAMS) from None
        except ParamsFileNotFound as err:  # e.g. the file `dataset use` chose was moved or deleted since
            typer.echo(f"{err}; nothing was run", err=True)
            typer.echo(_params_choice_hint(), err=True)
            raise SystemExit(EXIT_INVALID_PARAMS) from None


def _params_choice_hint() -> str:
    """Where the missing params file was chosen, and how to choose another."""
    from core.settings import Settings

    source = Settings().params_source
    if source == "state":
        return "it was chosen with `mlops-lab dataset use`; choose another, or `mlops-lab dataset use params.yaml`"
    if source == "env":
        return "it is named by MLOPS_PARAMS_FILE; fix or unset that variable"
    return "run from the repository root, set MLOPS_PARAMS_FILE, or choose one with `mlops-lab dataset use PARAMS`"


app = _App(
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


COMMAND_MODULES = (
    data,
    dataset,
    training,
    explanations,
    stages,
    batch,
    features,
    stream,
    registry,
    rollout,
    serve,
    traffic,
    monitor,
    shadow,
    admin,
    ops,
    privacy,
    db,
    images,
)
for module in (*COMMAND_MODULES, catalog, ask, quiz, labs, bench, generated):
    module.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()
