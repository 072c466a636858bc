"""CLI commands: ``images tags [--allow-dirty] [--model-version N] [--registry R] [--format plain|env]``.

Concept: immutable infrastructure (C29). A thin shell over ``ops/images.py``: read the commit (git)
and the champion (the MLflow registry named by the settings), compute one tag per Dockerfile and print
it. ``plain`` prints ``<image>:<tag> <dockerfile>`` lines for a build loop; ``env`` prints the
variables docker/compose.yaml reads (``export $(mlops-lab images tags --format env)``). A refusal
(dirty worktree, no git, no champion) is one line on stderr and exit code 1.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from cli.help import group_settings
from pipelines.registry import current_aliases

images_app = typer.Typer(
    **group_settings(), help="Container images: immutable tags from the git commit and the champion."
)


class Format(StrEnum):
    plain = "plain"
    env = "env"


def champion_version() -> str | None:
    """The champion's version in the registry the settings point at, or None."""
    from core.settings import Settings
    from core.startup import configure_runtime

    settings = Settings()
    configure_runtime(settings)
    return current_aliases(settings).get("champion")


@images_app.command("tags")
def tags(
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Tag a dirty worktree anyway (suffix -dirty; local use only).")
    ] = False,
    model_version: Annotated[
        str | None,
        typer.Option(help="Champion version the API release is for (default: read the registry; 0 = none yet)."),
    ] = None,
    registry: Annotated[str, typer.Option(help="Registry prefix, e.g. ghcr.io/acme (default: none).")] = "",
    output: Annotated[Format, typer.Option("--format", help="plain: image + Dockerfile; env: KEY=value.")] = (
        Format.plain
    ),
) -> None:
    """Print each image's immutable tag: <git sha 12> (+ -m<champion version> for the API); never `latest`."""
    from core.settings import Settings
    from ops.images import ImageTagError, env_lines, plan_tags, read_git_state

    try:
        git = read_git_state(Settings().project_dir)
        champion = model_version if model_version is not None else champion_version()
        images = plan_tags(git, champion, allow_dirty=allow_dirty, registry=registry)
    except ImageTagError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=1) from err
    assert champion is not None  # plan_tags refuses a missing champion
    if output is Format.env:
        typer.echo("\n".join(env_lines(git, images, champion)))
    else:
        typer.echo("\n".join(f"{image.reference} {image.spec.dockerfile}" for image in images))


def register(app: typer.Typer) -> None:
    """Add the ``images`` command group to the CLI."""
    app.add_typer(images_app, name="images")
