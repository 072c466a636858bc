"""The ``batch-scoring`` demo (C61) runs on a fresh state and shows what it claims."""

from __future__ import annotations

import re

import pytest

from core.context import LabContext
from flows.batch_scoring import read_output

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_batch_scoring_demo_stops_early_resumes_on_dask_and_matches_the_service(run_demo, ctx: LabContext) -> None:
    out = run_demo("batch_scoring", ctx, width=220)
    assert "3 of 8 part files" in out
    assert re.search(
        r"200,000 rows scored by \S+ v1 in 8 chunks \(5 now, 3 already done\): 199,997 scored, 3 refused", out
    )
    assert "on Dask LocalCluster of 2 processes" in out
    for reason in ("petal_length: outside [0.5, 8]", "sepal_width: missing", "sepal_length: outside [3, 9]"):
        assert reason in out
    assert "each input row exactly once: True" in out
    assert "labels equal: True" in out
    result = read_output(ctx.settings.state / "batch" / "scored")
    assert result["row"].tolist() == list(range(200_000))
    assert result["error"].notna().sum() == 3
