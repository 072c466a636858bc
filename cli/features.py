"""CLI commands: ``mlops-lab features ...``, the feature store (Feast) and what a join can leak.

Concept: feature store and point-in-time joins (C62). Thin shells over ``pipelines/feature_history.py``
(a seeded event history), ``pipelines/feature_store.py`` (Feast: apply, materialize, joins) and
``pipelines/feature_leakage.py`` (the point-in-time join against the naive latest join). Feast costs seconds
to import, so it is imported only inside the commands that use it: ``mlops-lab --help`` never loads it.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from cli.help import group_settings

if TYPE_CHECKING:
    from pipelines.feature_leakage import LeakageResult

console = Console()

features = typer.Typer(
    **group_settings(),
    help="The feature store: an event history in Feast, and what a naive join leaks into training.",
    no_args_is_help=True,
)

Specimens = Annotated[int, typer.Option(min=20, help="Specimens in the generated history.")]
Seed = Annotated[int, typer.Option(help="Seed of the history (and of the train/test split).")]


@features.command("history")
def history(specimens: Specimens = 400, seed: Seed = 0) -> None:
    """Generate a seeded event history, write it as Feast's offline store, apply the definitions, materialize."""
    from core.context import load_context
    from pipelines.data import build_raw_frame
    from pipelines.feature_history import EVENT_TIME, generate_history
    from pipelines.feature_store import FeatureRepo, apply, definition_digest, materialize, write_history

    ctx = load_context()
    cfg = ctx.params.dataset
    repo = FeatureRepo(ctx.settings.feature_store_dir)
    events = generate_history(build_raw_frame(cfg, ctx.params.ingest), cfg, specimens=specimens, seed=seed)
    write_history(repo, events)
    store = apply(repo, cfg)
    end = datetime.now(UTC)
    materialize(store, end)
    newest = events.measurements[EVENT_TIME].max()
    console.print(
        f"wrote {len(events.measurements)} measurements of {specimens} specimens (newest {newest:%Y-%m-%d %H:%M} "
        f"UTC) and {len(events.labels)} labels; {len(events.open_ids)} specimens still open"
    )
    console.print(f"applied the feature view (definition sha256 {definition_digest(cfg)[:12]}) and materialized")
    console.print(f"store: {repo.root}")


@features.command("materialize")
def materialize_online() -> None:
    """Copy each specimen's latest values (up to now) from the offline store to the online store."""
    from core.context import load_context
    from pipelines.feature_store import FeatureRepo, materialize, open_store

    ctx = load_context()
    repo = FeatureRepo(ctx.settings.feature_store_dir)
    if not repo.registry.is_file():
        console.print(f"[red]no feature store at {repo.root}[/red]: run `mlops-lab features history` first")
        raise typer.Exit(1)
    end = datetime.now(UTC)
    materialize(open_store(repo), end)
    console.print(f"materialized up to {end:%Y-%m-%d %H:%M:%S} UTC into {repo.online_db}")


@features.command("training-set")
def training_set(
    out: Annotated[Path, typer.Option("--out", "-o", help="The training CSV to write (its lineage beside it).")],
) -> None:
    """Point-in-time training rows from the store's labels, as a training CSV for `train --data`."""
    from core.context import load_context
    from pipelines.feature_store import FeatureRepo
    from pipelines.feature_training import export_training_set, lineage_path

    ctx = load_context()
    try:
        record = export_training_set(FeatureRepo(ctx.settings.feature_store_dir), ctx.params.dataset, out)
    except FileNotFoundError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from None
    console.print(
        f"wrote {record.rows} rows to {out} (point-in-time join; {record.dropped_no_features} labels without "
        f"features in the time-to-live and {record.dropped_duplicates} duplicate rows dropped)"
    )
    console.print(
        f"lineage: {lineage_path(out)} (feature view {record.feature_view}, definition "
        f"{record.definition_sha256[:12]}, measurements {record.measurements_sha256[:12]})"
    )
    console.print(f"next: mlops-lab train --data {out}  (the version will carry feature_store.* tags)")


@features.command("leakage")
def leakage(specimens: Specimens = 400, seed: Seed = 0) -> None:
    """Train on a point-in-time join (Feast) and on a naive latest join; print offline vs online accuracy."""
    from core.context import load_context
    from pipelines.data import build_raw_frame
    from pipelines.feature_history import generate_history
    from pipelines.feature_leakage import compare_on_history
    from pipelines.feature_store import FeatureRepo, apply, write_history

    ctx = load_context()
    cfg = ctx.params.dataset
    events = generate_history(build_raw_frame(cfg, ctx.params.ingest), cfg, specimens=specimens, seed=seed)
    with tempfile.TemporaryDirectory(prefix="feature-leakage-") as folder:  # a throwaway store, not the user's
        repo = FeatureRepo(Path(folder))
        write_history(repo, events)
        result = compare_on_history(events, ctx.params, seed, store=apply(repo, cfg))
    _print_leakage(result)


def _print_leakage(result: LeakageResult) -> None:
    from rich.table import Table

    table = Table(
        title=f"seed {result.seed}: {result.train_specimens} training and {result.test_specimens} test specimens",
        title_justify="left",
    )
    for column in ("training set", "offline accuracy", "online accuracy", "offline - online"):
        table.add_column(column)
    for label, scores in (("point in time (Feast)", result.point_in_time), ("naive (latest values)", result.naive)):
        table.add_row(label, f"{scores.offline:.3f}", f"{scores.online:.3f}", f"{scores.gap:+.3f}")
    console.print(table)
    console.print(
        "offline: the model on test rows of its own training set; online: on the same specimens' features as "
        f"they were when the prediction was asked for. {result.leaked_test_rows} of {result.test_specimens} naive "
        "test rows hold the lab's later record. Over 20 seeds: docs/feature-leakage-study.md."
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.add_typer(features, name="features")
