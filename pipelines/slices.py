"""Slice metrics and a parity check: is the model good for *every* group, not just on average?

Concept: slice-based evaluation and fairness testing (C41). An overall accuracy of 0.95 can hide a
class the model gets right only half the time, or a data source (a lab, a region, a device) it
serves badly. We therefore break the held-out score down:

- per **class**: recall, i.e. the accuracy on the rows that truly belong to that class;
- per value of each **grouping column** (for example ``dataset.group_column``): accuracy.

The parity check then compares slices *within a family* (classes with classes, sources with
sources): the gap between the best and the worst slice must stay within ``max_recall_gap``.
Slices smaller than ``min_slice_size`` are reported but left out of the gap, because the accuracy
of three rows is noise, and a gate that fails on noise gets switched off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.params import SliceParityParams
from pipelines.behavioural import CheckResult

CLASS_FAMILY = "class"
_EPS = 1e-9  # float slack so a gap of exactly the limit (1.0 - 0.7 vs 0.3) counts as within it


@dataclass(frozen=True)
class SliceMetric:
    """One slice's score: ``family`` is "class" or a grouping column's name."""

    family: str
    slice: str
    metric: str  # "recall" for class slices, "accuracy" for group slices
    value: float
    n: int


def _as_array(values: pd.Series | np.ndarray | list[Any], what: str, n: int | None) -> np.ndarray:
    arr = np.asarray(values).astype(str)
    if n is not None and len(arr) != n:
        raise ValueError(f"{what} has {len(arr)} values but y_true has {n}; slices need row-aligned inputs")
    return arr


def slice_metrics(
    y_true: pd.Series | np.ndarray | list[Any],
    y_pred: pd.Series | np.ndarray | list[Any],
    groups: Mapping[str, pd.Series] | None = None,
) -> list[SliceMetric]:
    """Per-class recall and per-group accuracy; inputs are aligned by position, not by index."""
    truth = _as_array(y_true, "y_true", None)
    pred = _as_array(y_pred, "y_pred", len(truth))
    correct = truth == pred
    out = [
        SliceMetric(CLASS_FAMILY, str(cls), "recall", float(correct[truth == cls].mean()), int((truth == cls).sum()))
        for cls in sorted(set(truth))
    ]
    for column, values in (groups or {}).items():
        if column == CLASS_FAMILY:
            raise ValueError(f"grouping column may not be called {CLASS_FAMILY!r}: that family holds per-class recall")
        group = _as_array(values, f"group {column!r}", len(truth))
        for value in sorted(set(group)):
            mask = group == value
            out.append(SliceMetric(column, str(value), "accuracy", float(correct[mask].mean()), int(mask.sum())))
    return out


def parity_check(slices: list[SliceMetric], params: SliceParityParams) -> CheckResult:
    """Fail if, in any slice family, best minus worst score exceeds ``max_recall_gap``.

    Only slices with ``n >= min_slice_size`` count; a family with fewer than two such slices has
    no gap to measure and passes.
    """
    cases: list[dict[str, Any]] = []
    summaries: list[str] = []
    failures: list[str] = []
    for family in dict.fromkeys(s.family for s in slices):  # first-seen order: classes, then groups
        members = [s for s in slices if s.family == family]
        counted = [s for s in members if s.n >= params.min_slice_size]
        cases += [
            {
                "family": s.family,
                "slice": s.slice,
                "metric": s.metric,
                "value": round(s.value, 4),
                "n": s.n,
                "counted": s.n >= params.min_slice_size,
            }
            for s in members
        ]
        ignored = len(members) - len(counted)
        note = f" ({ignored} slice(s) under n={params.min_slice_size} ignored)" if ignored else ""
        if len(counted) < 2:
            summaries.append(f"{family}: fewer than 2 slices with n >= {params.min_slice_size}, no gap{note}")
            continue
        best = max(counted, key=lambda s: s.value)
        worst = min(counted, key=lambda s: s.value)
        gap = best.value - worst.value
        text = (
            f"{family}: {worst.metric} gap {gap:.3f} between {best.slice} ({best.value:.3f}, n={best.n}) "
            f"and {worst.slice} ({worst.value:.3f}, n={worst.n}), max {params.max_recall_gap:.3f}{note}"
        )
        summaries.append(text)
        if gap > params.max_recall_gap + _EPS:
            failures.append(text)
    if not slices:
        summaries.append("no slices to compare")
    detail = "; ".join(failures) if failures else "; ".join(summaries)
    return CheckResult("slice_parity", not failures, detail, cases)
