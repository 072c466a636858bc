"""Helpers shared by the unit tests of several lab checkers (labs 4 and 5 read the same frame)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest


def _ab_frame(*arms: tuple[str, str, str, int, int]) -> pd.DataFrame:
    """(strategy, arm, version, labelled, correct) groups as a labelled_window-like frame."""
    records = []
    for strategy, arm, version, labelled, correct in arms:
        records += [
            {"strategy": strategy, "arm": arm, "model_version": version, "correct": i < correct}
            for i in range(labelled)
        ]
    return pd.DataFrame(records)


@pytest.fixture
def ab_frame() -> Callable[..., pd.DataFrame]:
    """``ab_frame(*groups)``: (strategy, arm, version, labelled, correct) groups as a labelled_window-like frame."""
    return _ab_frame
