"""The rolling view in the online store: the stream writes it with ``store.push``, serving reads it by id.

Concept: real-time features (C62, C63). ``materialize`` copies batch values to the online store on a schedule;
a stream writes each specimen's fresh aggregates (`pipelines.rolling_features`) the moment it has them, through
the push source of the `specimen_rolling` view (`pipelines.feature_store.rolling_view`). Feast's SQLite online
store keeps one row per specimen: the last write wins, so the caller must write the latest window
(`serving.stream_features` checks that, and writes again if another worker moved the window meanwhile).

Feast is imported inside the functions (it costs seconds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from pipelines.feature_history import ENTITY_KEY, EVENT_TIME
from pipelines.feature_store import ROLLING_PUSH, ROLLING_VIEW
from pipelines.rolling_features import COUNT, feature_names

if TYPE_CHECKING:
    from feast import FeatureStore


def push_rolling(
    store: FeatureStore, rows: Mapping[str, tuple[datetime, Mapping[str, float]]], features: Sequence[str]
) -> None:
    """Write each specimen's aggregates (stamped with its latest event's time) to the online store."""
    import pandas as pd
    from feast.data_source import PushMode

    if not rows:
        return
    names = feature_names(features)
    frame = pd.DataFrame(
        [{ENTITY_KEY: sid, EVENT_TIME: at, **{n: values[n] for n in names}} for sid, (at, values) in rows.items()]
    )
    frame[COUNT] = frame[COUNT].astype("int64")
    frame[EVENT_TIME] = pd.to_datetime(frame[EVENT_TIME], utc=True)
    store.push(ROLLING_PUSH, frame, to=PushMode.ONLINE)


def online_rolling(store: FeatureStore, entity_ids: list[str], features: Sequence[str]) -> dict[str, dict | None]:
    """Each specimen's rolling features as the online store holds them (None: none written yet)."""
    names = feature_names(features)
    response = store.get_online_features(
        features=[f"{ROLLING_VIEW}:{n}" for n in names], entity_rows=[{ENTITY_KEY: sid} for sid in entity_ids]
    ).to_dict()
    out: dict[str, dict | None] = {}
    for i, sid in enumerate(entity_ids):
        values = {n: response[n][i] for n in names}
        out[sid] = None if any(v is None for v in values.values()) else {n: float(v) for n, v in values.items()}
    return out
