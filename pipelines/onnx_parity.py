"""The parity check: does the ONNX graph answer what the fitted Pipeline answers, on every kind of row?

Concept: model optimisation without a silent change of behaviour (C54). An exported graph is a second
implementation of the model; it is only served if, on the same rows, it gives the same class everywhere
and probabilities within ``gate.onnx.tolerance`` of scikit-learn's. The rows are the ones a served model
meets, and the ones a converter is most likely to get wrong:

- the gate's **holdout** (real rows never trained on);
- a generated batch of every valid kind (``clean``, ``covariate-shift``, ``prior-shift``, ``concept-shift``,
  from `pipelines.batches`), so shifted inputs far from the training mass are covered;
- **edge rows**: every corner of the contract's ranges (each feature at its min or max), a zero in every
  ratio's denominator (the DerivedFeatures converter's NaN guard), and, when the contract allows missing
  values, each feature missing in turn (the imputer's fill).

Why 1e-5: the double-precision graph of a linear model agrees with scikit-learn to about 1e-16, an SVC
to about 2e-8 and the forest (which sums float32 leaf values) to about 5e-8; a converter bug (a wrong
weight, a missing step, a ratio that became inf) moves probabilities by 1e-2 or more. 1e-5 sits orders of
magnitude away from both, and is far below what any decision here reads (the gate's 0.9 confidence,
a two-decimal probability in an answer).

Pure: models and frames in, a ``ParityResult`` out; the caller decides what to do with it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from core.params import Params

DEFAULT_TOLERANCE = 1e-5
CORNER_LIMIT = 10  # features up to which every corner of the range box is a row (2**10 = 1024 rows)


@dataclass(frozen=True)
class ParityResult:
    """What the parity check saw: rows per source, class mismatches, the largest probability difference."""

    rows_checked: int
    class_mismatches: int
    max_abs_diff: float
    tolerance: float
    rows_by_source: dict[str, int] = field(default_factory=dict)
    worst_source: str = ""  # where the largest difference (or the first mismatch) was

    @property
    def passed(self) -> bool:
        return self.rows_checked > 0 and self.class_mismatches == 0 and self.max_abs_diff <= self.tolerance

    @property
    def reason(self) -> str:
        """One line: the figures, and what failed."""
        figures = (
            f"{self.rows_checked} rows ({', '.join(f'{k} {v}' for k, v in self.rows_by_source.items())}): "
            f"{self.class_mismatches} class mismatches, max |p_onnx - p_sklearn| {self.max_abs_diff:.3g} "
            f"(tolerance {self.tolerance:g})"
        )
        if self.passed:
            return "parity passed on " + figures
        if self.rows_checked == 0:
            return "parity not checked: no rows"
        return f"diverged on {figures}; worst on {self.worst_source}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rows_checked": self.rows_checked,
            "class_mismatches": self.class_mismatches,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "rows_by_source": dict(self.rows_by_source),
            "worst_source": self.worst_source,
        }


def edge_rows(params: Params) -> np.ndarray:
    """Range corners, zero denominators and (when the contract allows them) missing values, contract order."""
    cfg = params.dataset
    names = cfg.feature_names
    low = np.array([cfg.features[f].min for f in names], dtype=np.float64)
    high = np.array([cfg.features[f].max for f in names], dtype=np.float64)
    if len(names) <= CORNER_LIMIT:
        corners = np.array(list(itertools.product(*zip(low, high, strict=True))), dtype=np.float64)
    else:  # too many corners: all-low, all-high and each feature alone at its max
        corners = np.vstack([low, high, low + np.diag(high - low)])
    middle = (low + high) / 2
    rows = [corners, middle[None, :]]
    for _numerator, denominator in params.features.ratios:
        zero = np.vstack([low, middle, high])
        zero[:, names.index(denominator)] = 0.0
        rows.append(zero)
    if cfg.allow_missing:
        missing = np.tile(middle, (len(names), 1))
        missing[np.arange(len(names)), np.arange(len(names))] = np.nan
        rows.append(missing)
    return np.vstack(rows)


def parity_rows(
    params: Params, holdout: pd.DataFrame, reference: pd.DataFrame, rows_per_kind: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """The rows the check runs on, by source: ``holdout``, one batch per valid kind, ``edge``.

    A kind the generator cannot draw for this data is left out (the result's ``rows_by_source`` shows it).

    Args:
        holdout: the gate's holdout (its feature columns are used).
        reference: labelled rows the batch generator fits its class Gaussians to (the training split).
        rows_per_kind: rows of each generated batch.
    """
    from pipelines.batches import VALID_KINDS, generate_batch

    features = params.dataset.feature_names
    groups = {"holdout": holdout[features].to_numpy(dtype=np.float64)}
    for i, kind in enumerate(sorted(VALID_KINDS)):
        try:
            batch = generate_batch(kind, reference, params, rows=rows_per_kind, seed=seed + i)
        except (ValueError, RuntimeError, np.linalg.LinAlgError):  # e.g. a class too small to fit a Gaussian to
            continue  # that kind is left out, and its absence shows in ``rows_by_source``
        groups[str(kind)] = batch[features].to_numpy(dtype=np.float64)
    groups["edge"] = edge_rows(params)
    return groups


def check_parity(reference: Any, candidate: Any, groups: dict[str, np.ndarray], tolerance: float) -> ParityResult:
    """Score every group with both models (``predict_proba`` and ``classes_``) and compare.

    ``reference`` is the fitted Pipeline, ``candidate`` the ONNX model; the class of a row is the argmax of
    each model's own probabilities over its own ``classes_``, so a graph with its classes in another order
    counts as a mismatch.
    """
    ref_classes = np.asarray([str(c) for c in reference.classes_])
    cand_classes = np.asarray([str(c) for c in candidate.classes_])
    rows = mismatches = 0
    worst, worst_source, first_mismatch = 0.0, "", ""
    by_source: dict[str, int] = {}
    for source, matrix in groups.items():
        if len(matrix) == 0:
            continue
        expected = np.asarray(reference.predict_proba(matrix), dtype=np.float64)
        actual = np.asarray(candidate.predict_proba(matrix), dtype=np.float64)
        by_source[source] = len(matrix)
        rows += len(matrix)
        wrong = int(np.sum(ref_classes[expected.argmax(axis=1)] != cand_classes[actual.argmax(axis=1)]))
        diff = float(np.nanmax(np.abs(actual - expected))) if actual.shape == expected.shape else float("inf")
        if not np.array_equal(np.isnan(actual), np.isnan(expected)):
            diff = float("inf")
        if wrong and not mismatches:
            first_mismatch = source
        mismatches += wrong
        if diff > worst:
            worst, worst_source = diff, source
    return ParityResult(rows, mismatches, worst, tolerance, by_source, first_mismatch or worst_source)
