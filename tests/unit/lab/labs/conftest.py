"""Helpers shared by the unit tests of several lab checkers (labs 4 and 5 read the same frame)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest


def _ab_frame(*arms: tuple[str, str, str, int, int]) -> pd.DataFrame:
    """(strategy, arm, version, labelled, correct) groups as a labelled_window-like frame.

    Each label has its own request id and arrival time (in the order given) and no user key.
    """
    records: list[dict[str, object]] = []
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for strategy, arm, version, labelled, correct in arms:
        records += [
            {
                "strategy": strategy,
                "arm": arm,
                "model_version": version,
                "correct": i < correct,
                "request_id": f"req-{len(records) + i:05d}",
                "label_ts": t0 + timedelta(seconds=len(records) + i),
                "user_key": None,
            }
            for i in range(labelled)
        ]
    return pd.DataFrame(records)


@pytest.fixture
def ab_frame() -> Callable[..., pd.DataFrame]:
    """``ab_frame(*groups)``: (strategy, arm, version, labelled, correct) groups as a labelled_window-like frame."""
    return _ab_frame
