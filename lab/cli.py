"""The one command line: ``mlops-lab``.

Each command is a thin shell over a core function. Heavy libraries (mlflow, prefect,
great_expectations, sklearn, evidently) are imported inside the commands, so ``--help`` is instant.
Command groups live in ``lab/commands/``; each module registers its own commands here.
"""

from __future__ import annotations

import typer

from lab.commands import (
    admin,
    bench,
    catalog,
    data,
    images,
    labs,
    monitor,
    ops,
    registry,
    rollout,
    serve,
    stages,
    study,
    traffic,
    training,
)

app = typer.Typer(
    name="mlops-lab",
    help="A runnable MLOps reference implementation: train, gate, register, serve, monitor, retrain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: drawing rich panels costs ~0.3 s, and --help must be instant
)

COMMAND_MODULES = (data, training, stages, registry, rollout, serve, traffic, monitor, admin, ops, images)
for module in (*COMMAND_MODULES, catalog, study, labs, bench):
    module.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()
