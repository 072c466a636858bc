"""A client's request id names one request: reusing it for other features is refused, not silently dropped.

Concept: idempotent requests (C18, C38). A client may choose its ``X-Request-Id`` so that a retry is
logged once (the log inserts with ON CONFLICT DO NOTHING on the id). The same id with *other* features
used to be answered and then dropped by that insert: an answer the log never saw, and a way to
answer a label for one input with another. `RecentRequests` remembers the feature digest of the
newest ``capacity`` client-chosen ids of this process, in memory (no database read on the hot path):
the same id with the same features is a retry (answered, logged once), with other features a
`RequestIdConflictError` (409 naming ``X-Request-Id`` on every protocol).

What is and is not guaranteed: within one process, a reuse is refused while the first use is among the
newest ``capacity`` ids. A reuse that reaches another worker or replica, or comes after the id was
forgotten, is answered and, as before, not logged a second time: the database's unique key keeps the
first features, so the log never holds two inputs under one id, but that answer goes unlogged.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

DEFAULT_CAPACITY = 65_536  # ids remembered per process: about 8 MiB


class RequestIdConflictError(ValueError):
    """An ``X-Request-Id`` already used for other features: 409, nothing answered or logged."""


def feature_digest(values: np.ndarray) -> bytes:
    """A 128-bit digest of the request's rows (shape and every float64 value, NaN for a missing one)."""
    matrix = np.ascontiguousarray(values, dtype="float64")  # no copy for what the parsers produce
    digest = hashlib.blake2b(matrix.shape[0].to_bytes(8, "little"), digest_size=16)
    digest.update(matrix.data)  # the buffer itself: no bytes copy of a 10,000-row matrix
    return digest.digest()


class RecentRequests:
    """Request id -> feature digest of the newest ``capacity`` client-chosen ids (oldest forgotten first)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._seen: OrderedDict[str, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def claim(self, request_id: str, values: np.ndarray) -> bytes | None:
        """Remember ``request_id`` for these rows; the digest if this call added it, None for a retry.

        Raises:
            RequestIdConflictError: the id was used for other rows.
        """
        digest = feature_digest(values)
        known = self._seen.setdefault(request_id, digest)  # one step: two requests cannot both claim an id
        if known != digest:
            raise RequestIdConflictError(
                f"X-Request-Id {request_id!r} was already used for other features; send a new id for a new "
                "request (the same id is only for retrying the same request)"
            )
        if known is digest:  # new here
            if len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
            return digest
        return None

    def release(self, request_id: str, digest: bytes) -> None:
        """Forget an id this process claimed for a request that was not answered (so a retry may succeed)."""
        if self._seen.get(request_id) is digest:
            del self._seen[request_id]
