"""Real-time features in the stream: each specimen's window in Redis, its aggregates pushed to the online store.

Concept: real-time features, offline and online consistency (C62, C63). For every scored event that names a
``specimen_id`` the worker adds the event to that specimen's window and writes the window's aggregates
(`pipelines.rolling_features`, the same functions a batch recomputation calls) to Feast's online store through
the rolling view's push source, before it acks the message. So a request that arrives after the ack reads them.

Where the state lives, and why it is safe to replay:

- a specimen's window is a Redis sorted set ``<stream>:rolling:<specimen_id>``: member = the event (message id
  and values), score = its event time in ms. ``ZADD`` then ``ZREMRANGEBYRANK`` keeps the `WINDOW` latest. It lives
  in Redis, not in the worker, so it survives a restart and every worker of the group shares it;
- the update is *idempotent by message id*: a redelivered message is the same member, so ``ZADD`` changes nothing,
  and if it had already been trimmed it is added and trimmed again (it is older than the window's events). The
  window depends on the set of events only, so it needs no transaction with the ack; the adds of one read and
  the reads of the windows are one ``MULTI``/``EXEC``, so no worker sees half of another's batch;
- the online store keeps whatever was written last, and two workers may write one specimen out of order (A
  computes its window, B adds a newer event and writes, then A writes the older window). So after a write the
  worker reads the windows again and rewrites those that moved. Whoever moves a window writes it after moving it
  and checks after writing, so the last write of a specimen is always of its current window.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pipelines.rolling_features import WINDOW, RollingEvent, aggregate, latest_time
from pipelines.rolling_store import push_rolling

if TYPE_CHECKING:
    import redis
    from feast import FeatureStore

    from serving.stream_messages import Event

log = logging.getLogger(__name__)
MAX_REWRITES = 5  # rounds of "windows moved while we wrote": beyond that the next event's write settles it
Windows = dict[str, list[RollingEvent]]


def window_key(stream: str, entity_id: str) -> str:
    """The Redis key of one specimen's window."""
    return f"{stream}:rolling:{entity_id}"


class RollingFeatures:
    """Keeps the windows in Redis and pushes their aggregates to the online store."""

    def __init__(self, client: redis.Redis, store: FeatureStore, stream: str, features: Sequence[str]) -> None:
        self.client, self.store, self.stream, self.features = client, store, stream, list(features)

    def update(self, events: Sequence[Event]) -> Windows:
        """Add the events that name a specimen to its window (one transaction); each touched window after it."""
        named = [e for e in events if e.entity_id is not None]
        if not named:
            return {}
        entities = sorted({e.entity_id for e in named if e.entity_id is not None})
        with self.client.pipeline(transaction=True) as tx:
            for event in named:
                assert event.entity_id is not None
                key = window_key(self.stream, event.entity_id)
                member = RollingEvent(event.message_id, event.event_ms, tuple(float(v) for v in event.values[0]))
                tx.zadd(key, {member.member: member.event_ms})
                tx.zremrangebyrank(key, 0, -(WINDOW + 1))
            for entity in entities:
                tx.zrange(window_key(self.stream, entity), 0, -1, withscores=True)
            answers = tx.execute()
        return dict(zip(entities, (_window(a) for a in answers[-len(entities) :]), strict=True))

    def windows(self, entities: Sequence[str]) -> Windows:
        """The current windows of these specimens (oldest event first)."""
        with self.client.pipeline(transaction=True) as tx:
            for entity in entities:
                tx.zrange(window_key(self.stream, entity), 0, -1, withscores=True)
            answers = tx.execute()
        return dict(zip(entities, (_window(a) for a in answers), strict=True))

    def write(self, windows: Windows) -> int:
        """Push the windows' aggregates; push again those another worker moved meanwhile. Returns the pushes."""
        pushes = 0
        for _ in range(MAX_REWRITES):
            rows = {sid: (latest_time(w), aggregate(w, self.features)) for sid, w in windows.items() if w}
            if not rows:
                break
            push_rolling(self.store, rows, self.features)
            pushes += 1
            now = self.windows(list(rows))
            windows = {sid: w for sid, w in now.items() if w != windows[sid]}
        if windows:
            log.warning("rolling windows of %s kept moving; the next event of each rewrites it", sorted(windows))
        return pushes

    def apply(self, events: Sequence[Event]) -> int:
        """`update` then `write`: the online store holds each named specimen's current aggregates."""
        return self.write(self.update(events))


def _window(answer: Any) -> list[RollingEvent]:
    return [RollingEvent.from_member(member, score) for member, score in answer]
