"""CLI commands `dataset init/use/show`: bring your own CSV without reading the source.

Concept: data contracts (C06, C07) and configuration as code (C48). Thin shells: ``init`` profiles a CSV
and writes its params file (``pipelines.dataset_profile``); ``use`` checks a params file as a whole and
against its data, then records it as the active one in the state folder (``<state>/active-params``, read
by the settings when ``MLOPS_PARAMS_FILE`` is unset; the variable wins); ``show`` says which params file
is active, where that choice came from, and the dataset, target, classes and model name it gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from cli.help import group_settings
from core.exit_codes import EXIT_FAILED, EXIT_INVALID_PARAMS

if TYPE_CHECKING:
    from core.params import Params
    from core.settings import Settings

console = Console()
dataset_app = typer.Typer(
    **group_settings(no_args_is_help=True),
    help="Your own dataset: profile a CSV into a params file, switch to it, show the active one.",
)

SOURCES = {
    "env": "MLOPS_PARAMS_FILE",
    "state": "`mlops-lab dataset use`",
    "default": "the default (params.yaml of the project)",
}


def _problems(settings: Settings, path: Path) -> tuple[Params | None, list[str]]:
    """The params file's problems, as a whole and against its reference data (dataset.path)."""
    from core.params import ParamsError, load_params
    from pipelines.data import DataFileError, load_data
    from pipelines.params_against_data import problems_against_data

    try:
        params = load_params(path)
    except ParamsError as err:
        return None, err.problems
    except FileNotFoundError as err:
        return None, [str(err)]
    data = settings.resolve(params.dataset.path)
    if not data.is_file():  # not a problem of the params: a fresh clone has not ingested yet
        console.print(f"[yellow]{escape(str(data))} does not exist yet: checked without its data[/yellow]")
        return params, []
    try:
        frame = load_data(data).frame
    except DataFileError as err:
        return params, [f"dataset.path: {err}"]
    return params, problems_against_data(params.dataset, frame, data.name)


def init(
    data: Annotated[Path, typer.Argument(help="Your CSV: numeric feature columns and one class column.")],
    target: Annotated[str, typer.Option(help="The class column (its values must be class names).")],
    name: Annotated[str | None, typer.Option(help="Dataset name (default: the file's name).")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Params file to write (default: <state>/datasets/NAME.yaml).")
    ] = None,
) -> None:
    """Profile a CSV (columns, types, classes, ranges, missing values, duplicates) and write its params file."""
    import yaml

    from core.settings import Settings
    from core.tables import print_rows
    from pipelines.data import DataFileError
    from pipelines.dataset_profile import RANGE_MARGIN, ProfileError, contract_range, params_text, profile_csv, slug

    settings = Settings()
    try:
        profile = profile_csv(data.resolve(), target)
    except (FileNotFoundError, DataFileError, ProfileError) as err:
        console.print(f"[red]{escape(str(err))}[/red]", soft_wrap=True)
        raise typer.Exit(EXIT_FAILED) from None
    label = name or data.stem
    folder = settings.state / "datasets"
    out = (output or folder / f"{slug(label)}.yaml").resolve()
    base = yaml.safe_load((settings.project_dir / "params.yaml").read_text(encoding="utf-8")) or {}
    holdout = folder / f"{slug(label)}-holdout.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(params_text(profile, label, base, settings.project_dir, holdout), encoding="utf-8")

    console.print(
        f"{escape(data.name)}: {profile.rows} rows, {len(profile.columns)} columns, "
        f"{profile.duplicates} duplicate row(s), target {escape(target)!r}"
    )
    rows = []
    for c in profile.columns:
        if c.name == target:
            continue
        low, high = contract_range(c)
        rows.append([escape(c.name), str(c.missing), f"{c.minimum:g}..{c.maximum:g}", f"{low:g}..{high:g}"])
    print_rows(
        console,
        f"profile (contract range = observed range +/- {RANGE_MARGIN:.0%} of its span)",
        ("feature", "missing", "observed", "contract range"),
        rows,
    )
    counts = ", ".join(f"{k} ({v})" for k, v in profile.classes.items())
    console.print(f"classes of {escape(target)}: {escape(counts)}", soft_wrap=True)
    for note in profile.notes:
        console.print(f"[yellow]{escape(note)}[/yellow]")
    if profile.missing:
        console.print(
            f"[yellow]{sum(profile.missing.values())} missing value(s): the contract refuses them "
            "(allow_missing: false); clean the file or allow them, see the comments in the params file[/yellow]"
        )
    console.print(f"wrote [bold]{escape(str(out))}[/bold]  (model name {slug(label)}-classifier)")
    console.print(f"next: mlops-lab dataset use {escape(str(out))}")


def use(
    params_file: Annotated[Path, typer.Argument(help="The params file to make active (in this state folder).")],
) -> None:
    """Check a params file as a whole and against its data, then make it the active one (MLOPS_PARAMS_FILE wins)."""
    from core.settings import ACTIVE_PARAMS_FILE, Settings

    settings = Settings()
    path = params_file.resolve()
    params, problems = _problems(settings, path)
    if problems:
        console.print(f"[bold red]{escape(str(path))} is not made active: {len(problems)} problem(s)[/bold red]")
        for problem in problems:
            console.print(f"  - {escape(problem)}", soft_wrap=True)
        raise typer.Exit(EXIT_INVALID_PARAMS)
    choice = settings.state / ACTIVE_PARAMS_FILE
    choice.parent.mkdir(parents=True, exist_ok=True)
    if path == (settings.project_dir / "params.yaml").resolve():
        choice.unlink(missing_ok=True)  # back to the default: nothing to remember
    else:
        choice.write_text(f"{path}\n", encoding="utf-8")
    assert params is not None
    console.print(
        f"active: [bold]{escape(str(path))}[/bold] (dataset {escape(params.dataset.name)}, recorded in {choice})"
    )
    if settings.params_source == "env":
        console.print("[yellow]MLOPS_PARAMS_FILE is set and wins over this choice: unset it to use it[/yellow]")
    show()


def show() -> None:
    """Which params file is active, where that choice came from, and its dataset, target, classes and model."""
    from core.settings import Settings

    settings = Settings()
    path = settings.params_path
    console.print(f"params file: {escape(str(path))}")
    console.print(f"  chosen by: {SOURCES[settings.params_source]}")
    params, problems = _problems(settings, path)
    if params is not None:
        d = params.dataset
        console.print(f"  dataset:   {escape(d.name)} ({escape(str(settings.resolve(d.path)))})")
        console.print(f"  target:    {escape(d.target)}; classes: {escape(', '.join(d.classes))}")
        more = ", ..." if len(d.features) > 6 else ""
        console.print(f"  features:  {len(d.features)} ({escape(', '.join(list(d.features)[:6]))}{more})")
    origin = {"env": "MLOPS_MODEL_NAME", "params": "model_name in the params file", "default": "the default"}
    console.print(f"  model:     {escape(settings.model_name)} ({origin[settings.model_name_source]})")
    for problem in problems:
        console.print(f"  [red]problem: {escape(problem)}[/red]", soft_wrap=True)
    if problems:
        raise typer.Exit(EXIT_INVALID_PARAMS)


def register(app: typer.Typer) -> None:
    """Add the `dataset` group to the CLI."""
    dataset_app.command()(init)
    dataset_app.command()(use)
    dataset_app.command()(show)
    app.add_typer(dataset_app, name="dataset")
