"""The feature store: Feast, local, with its feature views defined here as code.

Concept: feature store (C62). One folder holds a whole Feast store, offline and online: the offline store is
a Parquet file of every measurement with its event time (Feast's file offline store), the online store a
SQLite file with the latest value per specimen (``materialize`` copies it there), and Feast's registry a
file that records the definitions below once ``apply`` has run. Training reads the offline store through
`historical` (a point-in-time join: for each labelled row, the values as they were at its time); serving
reads the online store through `online` (the latest values and the time they were measured). Both go
through the same feature view, so they agree; tests/integration/pipelines/test_feature_store.py checks it.

The definitions are versioned with the code: `definition_digest` is the sha256 of what they say (names,
types, key, time-to-live), written into the feature view's tags and into the MLflow tags of a model trained
on them (`pipelines.feature_training`), so a model names the exact feature view it was trained on.

Feast is imported inside the functions: it costs seconds, and only feature-store commands need it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.feature_history import CREATED_TIME, ENTITY_KEY, EVENT_TIME
from pipelines.rolling_features import COUNT, WINDOW, feature_names

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

    from core.params import DatasetConfig
    from pipelines.feature_history import History

PROJECT = "mlops_lab"
ENTITY = "specimen"
FEATURE_VIEW = "specimen_measurements"
TTL = timedelta(days=45)  # a value older than this at the join time is missing, not stale-but-used
MEASUREMENTS_FILE = "measurements.parquet"
ROLLING_VIEW = "specimen_rolling"  # the stream's rolling aggregates (pipelines.rolling_features)
ROLLING_PUSH = "specimen_rolling_push"  # the push source the stream writes them through
ROLLING_FILE = "rolling.parquet"  # the push source's batch source (Feast wants one; nothing writes it yet)
ROLLING_TTL = timedelta(days=1)
LABELS_FILE = "labels.parquet"


@dataclass(frozen=True)
class FeatureRepo:
    """Where one Feast store lives: offline Parquet, online SQLite and the registry, in one folder."""

    root: Path

    @property
    def measurements(self) -> Path:
        return self.root / MEASUREMENTS_FILE

    @property
    def labels(self) -> Path:
        return self.root / LABELS_FILE

    @property
    def rolling(self) -> Path:
        return self.root / ROLLING_FILE

    @property
    def registry(self) -> Path:
        return self.root / "registry.db"

    @property
    def online_db(self) -> Path:
        return self.root / "online.db"


@dataclass(frozen=True)
class OnlineRow:
    """One specimen's features as the online store holds them; ``values`` None = not in the store."""

    entity_id: str
    values: dict[str, float] | None
    measured_at: datetime | None


def feature_refs(cfg: DatasetConfig) -> list[str]:
    """The ``view:feature`` names Feast takes, one per model feature, in the contract's order."""
    return [f"{FEATURE_VIEW}:{name}" for name in cfg.feature_names]


def definition_digest(cfg: DatasetConfig) -> str:
    """sha256 of the feature view's definition: changes when a name, type, key or time-to-live changes."""
    spec = {
        "project": PROJECT,
        "entity": ENTITY,
        "join_key": ENTITY_KEY,
        "view": FEATURE_VIEW,
        "features": {name: "Float64" for name in cfg.feature_names},
        "ttl_s": int(TTL.total_seconds()),
        "timestamp_field": EVENT_TIME,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def definitions(repo: FeatureRepo, cfg: DatasetConfig) -> list[Any]:
    """The Feast objects: the specimen entity, the measurements view, and the stream's rolling view."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    specimen = Entity(name=ENTITY, join_keys=[ENTITY_KEY], value_type=ValueType.STRING, description="One plant.")
    source = FileSource(
        name="measurements",
        path=str(repo.measurements),
        timestamp_field=EVENT_TIME,
        created_timestamp_column=CREATED_TIME,
    )
    view = FeatureView(
        name=FEATURE_VIEW,
        entities=[specimen],
        ttl=TTL,
        schema=[Field(name=name, dtype=Float64) for name in cfg.feature_names],
        source=source,
        online=True,
        tags={"definition_sha256": definition_digest(cfg)},
        description="Measurements of one specimen over time (cm).",
    )
    return [specimen, view, rolling_view(repo, cfg, specimen)]


def rolling_view(repo: FeatureRepo, cfg: DatasetConfig, specimen: Any) -> Any:
    """The rolling view: written by the stream through a push source (``store.push``), never materialized."""
    from feast import FeatureView, Field, FileSource, PushSource
    from feast.types import Float64, Int64

    # Feast requires a batch source behind a push source (for materialize and historical reads); this one
    # names the file a batch recomputation could write, with the stream's columns.
    batch = FileSource(name="rolling_batch", path=str(repo.rolling), timestamp_field=EVENT_TIME)
    push = PushSource(name=ROLLING_PUSH, batch_source=batch)
    return FeatureView(
        name=ROLLING_VIEW,
        entities=[specimen],
        ttl=ROLLING_TTL,
        schema=[Field(name=n, dtype=Int64 if n == COUNT else Float64) for n in feature_names(cfg.feature_names)],
        source=push,
        online=True,
        tags={"window_events": str(WINDOW)},
        description=f"Count, mean and last value of each measurement over a specimen's last {WINDOW} stream events.",
    )


def open_store(repo: FeatureRepo) -> FeatureStore:
    """A Feast store on the folder (local provider, file offline store, SQLite online store)."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    config = RepoConfig(
        project=PROJECT,
        provider="local",
        registry=str(repo.registry),
        online_store={"type": "sqlite", "path": str(repo.online_db)},
        offline_store={"type": "file"},
        entity_key_serialization_version=3,
        repo_path=str(repo.root),
    )
    return FeatureStore(config=config)


def write_history(repo: FeatureRepo, history: History) -> None:
    """The history as the offline store's source (measurements) and the label table beside it."""
    repo.root.mkdir(parents=True, exist_ok=True)
    history.measurements.to_parquet(repo.measurements, index=False)
    history.labels.to_parquet(repo.labels, index=False)


def apply(repo: FeatureRepo, cfg: DatasetConfig) -> FeatureStore:
    """Register the definitions in the store's registry (what ``feast apply`` does for a repo)."""
    if not repo.measurements.is_file():
        raise FileNotFoundError(f"no measurements at {repo.measurements}; write a history first")
    store = open_store(repo)
    store.apply(definitions(repo, cfg))
    return store


def materialize(store: FeatureStore, end: datetime, start: datetime | None = None) -> None:
    """Copy each specimen's latest values measured in [start, end] to the online store (quietly)."""
    start = start or end - TTL
    with contextlib.redirect_stdout(io.StringIO()):  # Feast prints a progress bar
        store.materialize(start_date=start.astimezone(UTC), end_date=end.astimezone(UTC), feature_views=[FEATURE_VIEW])


def historical(store: FeatureStore, entity_rows: pd.DataFrame, cfg: DatasetConfig) -> pd.DataFrame:
    """Point-in-time join: for each (specimen_id, event_timestamp) row, the values as they were then.

    Row order and extra columns of ``entity_rows`` are kept for the rows Feast returns. A specimen with no value
    at all gets NaN; one whose values are all older than the time-to-live at its time is *dropped* by Feast
    0.67's file offline store (tests/integration/pipelines/test_feature_leakage.py pins it), so count rows
    against the input, not the output.
    """
    import pandas as pd

    rows = entity_rows.reset_index(drop=True).copy()
    rows["_row"] = range(len(rows))
    joined = store.get_historical_features(entity_df=rows, features=feature_refs(cfg)).to_df()
    joined = joined.sort_values("_row").drop(columns="_row").reset_index(drop=True)
    joined[EVENT_TIME] = pd.to_datetime(joined[EVENT_TIME], utc=True)
    return joined


def online(store: FeatureStore, entity_ids: list[str], cfg: DatasetConfig) -> list[OnlineRow]:
    """Each specimen's values in the online store and when they were measured (None for an unknown one)."""
    response = store.get_online_features(
        features=feature_refs(cfg), entity_rows=[{ENTITY_KEY: sid} for sid in entity_ids]
    ).to_dict(include_event_timestamps=True)
    out: list[OnlineRow] = []
    for i, sid in enumerate(entity_ids):
        values = {name: response[name][i] for name in cfg.feature_names}
        stamps = [response[f"{name}__ts"][i] for name in cfg.feature_names]
        if any(v is None for v in values.values()) or not any(stamps):
            out.append(OnlineRow(sid, None, None))
            continue
        measured = datetime.fromtimestamp(min(int(s) for s in stamps), UTC)
        out.append(OnlineRow(sid, {k: float(v) for k, v in values.items()}, measured))
    return out


def latest_join(measurements: pd.DataFrame, labels: pd.DataFrame, cfg: DatasetConfig) -> pd.DataFrame:
    """The naive join: each labelled specimen's *latest* values, whenever they were recorded (leaks).

    What ``SELECT ... FROM latest_measurements JOIN labels USING (specimen_id)`` gives: for a specimen whose
    record was updated after the prediction was asked for, the training row holds values nobody had then.
    """
    latest = (
        measurements.sort_values([ENTITY_KEY, EVENT_TIME, CREATED_TIME])
        .groupby(ENTITY_KEY, as_index=False)
        .last()[[ENTITY_KEY, *cfg.feature_names]]
    )
    return labels.merge(latest, on=ENTITY_KEY, how="left")
