"""A training set from the feature store, and the lineage that ties a model to it.

Concept: feature store (C62) and lineage (C13). `export_training_set` builds the labelled rows with Feast's
point-in-time join (each label joined to the values as they were when the prediction was asked for), writes
them as an ordinary training CSV, and writes beside it a small JSON record of where they came from: the
feature view and the sha256 of its definition, the sha256 of the offline store's source and label files (the
data snapshot), the join, the row counts. `train --data FILE` then validates and trains on the CSV like any
other file (the same expectation suite and gate), and `feature_lineage_tags` turns the record into
``feature_store.*`` tags on the MLflow run and the registered version, only while the CSV is the one the
record describes (its sha256 is in the record): an edited file loses the claim rather than keeping a false one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.feature_history import ENTITY_KEY, EVENT_TIME

if TYPE_CHECKING:
    from core.params import DatasetConfig
    from pipelines.feature_store import FeatureRepo

LINEAGE_SUFFIX = ".features.json"
TAG_PREFIX = "feature_store."


@dataclass(frozen=True)
class TrainingSetRecord:
    """Where a training CSV came from (written beside it as ``<file>.features.json``)."""

    csv_sha256: str
    feature_view: str
    definition_sha256: str
    features: list[str]
    join: str
    measurements_sha256: str
    labels_sha256: str
    rows: int
    dropped_no_features: int
    dropped_duplicates: int
    as_of_first: str
    as_of_last: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lineage_path(csv_path: Path) -> Path:
    return csv_path.with_name(csv_path.name + LINEAGE_SUFFIX)


def export_training_set(repo: FeatureRepo, cfg: DatasetConfig, out: Path) -> TrainingSetRecord:
    """Point-in-time training rows from the store's labels, as a training CSV plus its lineage record.

    A label whose specimen had no value within the view's time-to-live at its time is dropped (counted against
    the label table: Feast's file store leaves some such rows out of its answer, see
    `pipelines.feature_store.historical`), and so are exact duplicate rows (the expectation suite refuses them:
    two young plants can measure the same).
    """
    import pandas as pd

    from pipelines.data import write_csv
    from pipelines.feature_store import FEATURE_VIEW, definition_digest, historical, open_store

    if not repo.labels.is_file() or not repo.registry.is_file():
        raise FileNotFoundError(f"no feature store at {repo.root}: run `mlops-lab features history` first")
    labels = pd.read_parquet(repo.labels)
    joined = historical(open_store(repo), labels[[ENTITY_KEY, EVENT_TIME, cfg.target]], cfg)
    columns = [*cfg.feature_names, cfg.target]
    complete = joined.dropna(subset=cfg.feature_names)
    rows = complete[columns].round(cfg.decimals)
    unique = rows.drop_duplicates()
    write_csv(unique, out, decimals=cfg.decimals)
    record = TrainingSetRecord(
        csv_sha256=file_sha256(out),
        feature_view=FEATURE_VIEW,
        definition_sha256=definition_digest(cfg),
        features=list(cfg.feature_names),
        join="point-in-time (Feast get_historical_features at each label's event_timestamp)",
        measurements_sha256=file_sha256(repo.measurements),
        labels_sha256=file_sha256(repo.labels),
        rows=len(unique),
        dropped_no_features=len(labels) - len(complete),  # Feast drops rows past the TTL; NaN rows dropped here
        dropped_duplicates=len(rows) - len(unique),
        as_of_first=str(labels[EVENT_TIME].min()),
        as_of_last=str(labels[EVENT_TIME].max()),
    )
    lineage_path(out).write_text(json.dumps(asdict(record), indent=2) + "\n")
    return record


def feature_lineage_tags(csv_path: Path) -> dict[str, str]:
    """``feature_store.*`` tags for a training file exported from the store; {} for any other file.

    A record whose CSV sha256 no longer matches (the file was edited or replaced after the export) gives one tag
    saying so instead of the lineage, since the rows are no longer the ones the store produced.
    """
    sidecar = lineage_path(csv_path)
    if not sidecar.is_file():
        return {}
    try:
        record = json.loads(sidecar.read_text())
        claimed = str(record["csv_sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return {f"{TAG_PREFIX}lineage": f"unreadable record {sidecar.name}: not claimed"}
    if claimed != file_sha256(csv_path):
        return {f"{TAG_PREFIX}lineage": f"{csv_path.name} changed after its export: not claimed"}
    return {
        f"{TAG_PREFIX}lineage": "exported",
        f"{TAG_PREFIX}feature_view": str(record.get("feature_view", "")),
        f"{TAG_PREFIX}definition_sha256": str(record.get("definition_sha256", "")),
        f"{TAG_PREFIX}features": ",".join(record.get("features", [])),
        f"{TAG_PREFIX}join": str(record.get("join", ""))[:200],
        f"{TAG_PREFIX}measurements_sha256": str(record.get("measurements_sha256", "")),
        f"{TAG_PREFIX}labels_sha256": str(record.get("labels_sha256", "")),
        f"{TAG_PREFIX}as_of": f"{record.get('as_of_first', '')} .. {record.get('as_of_last', '')}",
    }
