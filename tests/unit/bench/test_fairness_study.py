"""The fairness gate's error-rate study: same definition as fairlearn, seeded, and the noise it measures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fairlearn.metrics import equalized_odds_difference

from bench.fairness_study import (
    draw_counts,
    eod_from_counts,
    gate_error_study,
    judged_rows_per_group,
    study_markdown,
    write_doc,
)
from core.params import Params


def _rows_of(counts: np.ndarray) -> tuple[list[int], list[int], list[int]]:
    """Rebuild labelled rows from one draw's counts: (truth, prediction, group)."""
    truth, pred, group = [], [], []
    for g, (positives, hits, negatives, alarms) in enumerate(counts):
        truth += [1] * positives + [0] * negatives
        pred += [1] * hits + [0] * (positives - hits) + [1] * alarms + [0] * (negatives - alarms)
        group += [g] * (positives + negatives)
    return truth, pred, group


def test_the_study_measures_what_fairlearn_measures() -> None:
    counts = draw_counts(np.random.default_rng(3), 25, 16, 1 / 3, (0.95, 0.6), (0.03, 0.1))
    ours = eod_from_counts(counts)
    for k in range(len(counts)):
        truth, pred, group = _rows_of(counts[k])
        assert ours[k] == equalized_odds_difference(truth, pred, sensitive_features=group)


def test_errors_shrink_with_more_rows_and_the_bound_splits_evenly() -> None:
    rows = gate_error_study(0.3, [16, 200], [0.0, 0.2, 0.3, 0.4], draws=2000, seed=1)
    refused = {(r.rows_per_group, r.true_difference): r.refused for r in rows}
    assert rows == gate_error_study(0.3, [16, 200], [0.0, 0.2, 0.3, 0.4], draws=2000, seed=1)  # seeded
    for n in (16, 200):
        assert refused[n, 0.0] < refused[n, 0.2] < refused[n, 0.3] < refused[n, 0.4]
        assert 0.4 < refused[n, 0.3] < 0.6  # at the bound the verdict is a coin toss, whatever the size
    assert refused[200, 0.2] < refused[16, 0.2]  # fewer false refusals with more rows ...
    assert 1 - refused[200, 0.4] < 1 - refused[16, 0.4]  # ... and fewer false passes
    assert refused[16, 0.2] > 0.2  # at the gate's size a fair-enough model is often refused: said in the doc


def test_doc_is_written_at_the_gates_size(params: Params, tmp_path: Path) -> None:
    n = judged_rows_per_group(params)
    assert 10 <= n <= 30  # iris: 149 rows, 45 in the holdout, 30 % of the rest for the test split
    text = write_doc(params, tmp_path / "fairness-study.md", draws=200).read_text(encoding="utf-8")
    assert f"n={n}/group refused" in text
    assert str(params.gate.fairness.max_equalized_odds_difference) in text
    assert study_markdown([], 0.3)[0].startswith("| true difference")
