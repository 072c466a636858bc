"""A client's request id names one request: the same id with other features is refused."""

from __future__ import annotations

import numpy as np
import pytest

from serving.request_ids import RecentRequests, RequestIdConflictError

ROW = np.array([[5.1, 3.5, 1.4, 0.2]])


def test_a_retry_passes_and_other_features_are_refused() -> None:
    recent = RecentRequests()
    assert recent.claim("r-1", ROW) is not None
    assert recent.claim("r-1", ROW.copy()) is None  # the same rows again: a retry
    with pytest.raises(RequestIdConflictError, match="X-Request-Id 'r-1'"):
        recent.claim("r-1", ROW + 0.1)
    with pytest.raises(RequestIdConflictError):
        recent.claim("r-1", np.vstack([ROW, ROW]))  # a batch is other rows too
    missing = np.array([[5.1, np.nan, 1.4, 0.2]])
    recent.claim("r-2", missing)
    assert recent.claim("r-2", missing.copy()) is None  # a missing value is the same missing value


def test_memory_is_bounded_and_the_oldest_id_is_forgotten_first() -> None:
    recent = RecentRequests(capacity=3)
    for i in range(4):
        recent.claim(f"r-{i}", ROW + i)
    assert len(recent) == 3
    assert recent.claim("r-0", ROW + 99) is not None  # forgotten: the honest limit of a bounded memory
    with pytest.raises(RequestIdConflictError):
        recent.claim("r-3", ROW)


def test_a_request_that_was_not_answered_releases_its_id() -> None:
    recent = RecentRequests()
    claimed = recent.claim("r-1", ROW)
    assert claimed is not None
    recent.release("r-1", claimed)
    assert recent.claim("r-1", ROW + 1) is not None
