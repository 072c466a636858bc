"""The ``fairness`` demo (C58) runs on a fresh state and shows what it claims."""

from __future__ import annotations

import re

import pytest

from core.context import LabContext

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _row(out: str, figure: str) -> tuple[float, float]:
    found = re.search(rf"│ {re.escape(figure)}\s+│ ([\d.]+)\s+│ ([\d.]+)\s+│", out)
    assert found, figure
    return float(found.group(1)), float(found.group(2))


def test_fairness_demo_measures_refuses_mitigates_and_monitors(run_demo, ctx: LabContext) -> None:
    out = run_demo("fairness", ctx, width=220)
    bound = ctx.params.gate.fairness.max_equalized_odds_difference
    assert 'positive outcome = "predicted virginica" (one-vs-rest)' in out
    for cls in ctx.params.dataset.classes:  # the two differences for every class, one-vs-rest
        assert re.search(rf"{cls}\s+demographic parity difference [\d.]+, equalized-odds difference [\d.]+", out)
    assert re.search(rf"✘ refused: equalized-odds difference [\d.]+ .* exceeds the bound {bound:.3f}", out)
    eod_before, eod_after = _row(out, "equalized-odds difference")
    recall_before, recall_after = _row(out, "site-b recall of virginica")
    accuracy_before, accuracy_after = _row(out, "accuracy (3 classes)")
    assert eod_before > bound > eod_after
    assert recall_after > recall_before
    assert f"accuracy {'gained' if accuracy_after >= accuracy_before else 'lost'}" in out
    assert "ThresholdOptimizer" in out
    assert "four-fifths rule: selection-rate ratio" in out
    assert re.search(r"✘ fairness fired: equalized-odds difference [\d.]+ .* labelled rows\)", out)
    assert re.search(r"│ 0\.4\s+│ [\d.]+%\s+│ false pass [\d.]+%", out)
