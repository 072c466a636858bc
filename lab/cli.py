"""The one command line: ``mlops-lab``.

Each command is a thin shell over a core function. Heavy libraries (mlflow, prefect,
great_expectations, sklearn, evidently) are imported inside the commands, so ``--help`` is instant.
Command groups live in ``lab/commands/``; each module registers its own commands here.
"""

from __future__ import annotations

import typer

from lab.commands import catalog, data, registry, training

app = typer.Typer(
    name="mlops-lab",
    help="A runnable MLOps reference implementation: train, gate, register, serve, monitor, retrain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (data, training, registry, catalog):
    module.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()
