"""Rolling per-specimen features: one definition, computed by the stream and recomputed in batch.

Concept: real-time features and offline/online consistency (C62, C63). The stream-scoring worker keeps, per
specimen, its last `WINDOW` events and writes their aggregates to the online store, so the next request sees
them; a batch job can recompute the same aggregates from the event log. Both call `aggregate` on a window chosen
by `window_of`, so they cannot disagree on the definition, and a test compares them value for value.

The definition, exactly:

- the *window* of a specimen is its `WINDOW` latest events, ordered by (event time in ms, `member` bytes) --
  the member (the message id and the values) breaks ties the way a Redis sorted set does, so the stream's state
  and a pandas sort order the events the same way;
- ``rolling_events`` is how many events the window holds (1 .. `WINDOW`);
- ``<feature>_mean`` is the mean of the feature over the window, ``<feature>_last`` its value in the latest event.

The window is a function of the *set* of events seen, not of their order or how often each arrived: an event
redelivered after a crash is the same member and changes nothing, one that arrives late takes its place by time.
That is what makes the stream's state idempotent (`serving.stream_features` keeps it in Redis).

pandas is imported inside `batch_rolling`; the rest is plain Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    import pandas as pd

WINDOW = 5  # events per specimen; part of the feature definition (the view's name says nothing of it: its tags do)
COUNT = "rolling_events"
MESSAGE_ID, EVENT_MS = "message_id", "event_ms"  # the batch frame's columns beside the entity key and features


@dataclass(frozen=True)
class RollingEvent:
    """One measurement of one specimen as the window keeps it."""

    message_id: str
    event_ms: int  # event time, milliseconds since the epoch (UTC)
    values: tuple[float, ...]  # the model's features, in contract order

    @property
    def member(self) -> bytes:
        """Its identity in the window (and its Redis sorted-set member): the message id and the values."""
        return orjson.dumps([self.message_id, *self.values])

    @classmethod
    def from_member(cls, member: bytes, event_ms: float) -> RollingEvent:
        message_id, *values = orjson.loads(member)
        return cls(str(message_id), int(event_ms), tuple(float(v) for v in values))


def feature_names(features: Sequence[str]) -> list[str]:
    """The rolling view's feature names, in order: the count, then each feature's mean and last value."""
    return [COUNT, *(f"{name}_{kind}" for name in features for kind in ("mean", "last"))]


def window_of(events: Sequence[RollingEvent], size: int = WINDOW) -> list[RollingEvent]:
    """The `size` latest distinct events, oldest first (a repeated event counts once)."""
    distinct = {e.member: e for e in events}.values()
    return sorted(distinct, key=lambda e: (e.event_ms, e.member))[-size:]


def aggregate(window: Sequence[RollingEvent], features: Sequence[str]) -> dict[str, float]:
    """The rolling features of a window (oldest first), keyed by `feature_names`."""
    if not window:
        raise ValueError("a window holds at least one event")
    out: dict[str, float] = {COUNT: float(len(window))}
    for i, name in enumerate(features):
        column = [e.values[i] for e in window]
        out[f"{name}_mean"] = sum(column) / len(column)
        out[f"{name}_last"] = column[-1]
    return out


def latest_time(window: Sequence[RollingEvent]) -> datetime:
    """When the window's latest event happened: the time the online row is stamped with."""
    return datetime.fromtimestamp(window[-1].event_ms / 1000, UTC)


def batch_rolling(events: pd.DataFrame, entity_key: str, features: Sequence[str]) -> pd.DataFrame:
    """The batch recomputation: a groupby over the event log, one row per entity, the stream's definition.

    ``events`` has the entity key, `MESSAGE_ID`, `EVENT_MS` and the features (one row per event; duplicates
    allowed, as a log written at least once has them).
    """
    import pandas as pd

    rows = []
    for entity, group in events.groupby(entity_key, sort=True):
        window = window_of(
            [
                RollingEvent(str(r[MESSAGE_ID]), int(r[EVENT_MS]), tuple(float(r[f]) for f in features))
                for r in group.to_dict("records")
            ]
        )
        rows.append({entity_key: entity, **aggregate(window, features)})
    return pd.DataFrame(rows, columns=[entity_key, *feature_names(features)])
