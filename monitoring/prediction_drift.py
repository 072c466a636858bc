"""Prediction drift: has what the model *answers* moved away from what it answered on the reference?

Concept: prediction drift (C33). Labels arrive late, inputs have many columns, but the model's output
is one class and one confidence per request, available at once. If the share of each predicted class
or the model's confidence changes, either the inputs moved in a way the model cares about or the
world changed under it, and either way someone should look. Two tests, each at
``params.prediction_drift.p_value``, and the check fires when either rejects (so the family-wise
false-alarm rate is at most twice that level):

* class shares: a chi-square test of homogeneity on the 2 x k table of predicted-class counts
  (reference row, current row). The reference is itself a sample (e.g. 150 predictions), so it is
  treated as one, not as exact shares: a goodness-of-fit test against fixed reference shares ignores
  the reference's own noise and fires too often when the reference is small. Classes predicted in
  neither sample are dropped, so no expected count is ever zero;
* confidence (the top class probability): a two-sample Kolmogorov-Smirnov test.

Why scipy and not Evidently's ``ValueDrift``: the inputs are two small arrays, the tests are two
classical one-liners with a p-value we control, and they run without Evidently's seconds-long
import. Evidently would also switch to a distance (Jensen-Shannon, Wasserstein) with a different
threshold once the reference passes 1,000 rows, changing the meaning of ``p_value`` silently.

The core, ``prediction_drift``, takes arrays of class labels and confidences; ``predictions_from_log``
reads them from a ``recent_predictions`` frame and ``reference_predictions`` from a fitted model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.findings import Finding
from serving.log_reader import confidence

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from core.params import MonitoringParams

CHECK = "prediction_drift"


@dataclass(frozen=True)
class ClassShift:
    """The chi-square test of homogeneity on predicted-class counts, with everything it computed.

    ``observed`` and ``expected`` are two rows (reference, current) over ``classes``; the expected
    count of a cell is its row total times its column total over the grand total.
    """

    classes: tuple[str, ...]
    observed: tuple[tuple[int, ...], tuple[int, ...]]
    expected: tuple[tuple[float, ...], tuple[float, ...]]
    statistic: float
    dof: int
    p_value: float

    @property
    def counts(self) -> dict[str, list[int]]:
        """Reference and current count per class."""
        return {c: [self.observed[0][i], self.observed[1][i]] for i, c in enumerate(self.classes)}


def class_shift(reference: Sequence[str], current: Sequence[str]) -> ClassShift:
    """Chi-square test of homogeneity (no continuity correction) on the 2 x k table of predicted classes.

    Only classes seen in either sample are columns, so no expected count is zero. With fewer than two
    classes there is nothing to compare: statistic 0, dof 0, p = 1.0.
    """
    from collections import Counter

    from scipy.stats import chi2_contingency

    ref, cur = Counter(map(str, reference)), Counter(map(str, current))
    classes = tuple(sorted(set(ref) | set(cur)))
    observed = (tuple(ref[c] for c in classes), tuple(cur[c] for c in classes))
    if len(classes) < 2:
        as_float = tuple(tuple(float(n) for n in row) for row in observed)
        return ClassShift(classes, observed, (as_float[0], as_float[1]), 0.0, 0, 1.0)
    result = chi2_contingency([list(observed[0]), list(observed[1])], correction=False)
    expected = tuple(tuple(float(v) for v in row) for row in result.expected_freq)
    return ClassShift(
        classes, observed, (expected[0], expected[1]), float(result.statistic), int(result.dof), float(result.pvalue)
    )


def class_shift_test(reference: Sequence[str], current: Sequence[str]) -> tuple[float, dict[str, list[int]]]:
    """Chi-square homogeneity p-value for predicted-class counts, and the counts per class.

    Returns p = 1.0 when fewer than two classes occur at all (nothing to compare).
    """
    shift = class_shift(reference, current)
    return shift.p_value, shift.counts


def confidence_shift_test(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray) -> float:
    """Two-sample K-S p-value of the top-class probabilities (missing values dropped)."""
    import numpy as np
    from scipy.stats import ks_2samp

    ref = np.asarray(reference, dtype="float64")
    cur = np.asarray(current, dtype="float64")
    return float(ks_2samp(ref[~np.isnan(ref)], cur[~np.isnan(cur)]).pvalue)


def _shares(counts: dict[str, list[int]], side: int) -> dict[str, float]:
    total = sum(pair[side] for pair in counts.values())
    return {c: round(pair[side] / total, 4) if total else 0.0 for c, pair in counts.items()}


def prediction_drift(
    reference_classes: Sequence[str],
    reference_confidence: Sequence[float],
    current_classes: Sequence[str],
    current_confidence: Sequence[float],
    params: MonitoringParams,
) -> Finding:
    """Compare the current window's predicted classes and confidences with the reference predictions.

    Confidences may contain NaN (requests answered with labels only); the confidence test then uses
    the rows that have one, and is skipped (reported, not failed) with fewer than ``min_rows`` of them.

    Returns:
        A ``Finding``: score = the smaller p-value of the tests that ran, threshold = ``p_value``;
        ``details`` holds both p-values, the class shares on each side and the mean confidences.
    """
    import numpy as np

    alpha, rows = params.prediction_drift.p_value, len(current_classes)
    if rows < params.min_rows:
        return Finding(
            CHECK,
            "inconclusive",
            None,
            alpha,
            f"only {rows} predictions in the window, fewer than min_rows={params.min_rows}: too few to judge",
            rows=rows,
            details={"min_rows": params.min_rows},
        )
    if len(reference_classes) == 0:
        raise ValueError("no reference predictions; build them with reference_predictions(model, reference_frame)")
    class_p, counts = class_shift_test(reference_classes, current_classes)
    ref_conf = np.asarray(reference_confidence, dtype="float64")
    cur_conf = np.asarray(current_confidence, dtype="float64")
    usable = min(int((~np.isnan(ref_conf)).sum()), int((~np.isnan(cur_conf)).sum()))
    conf_p = confidence_shift_test(ref_conf, cur_conf) if usable >= params.min_rows else None
    fired = [name for name, p in (("class shares", class_p), ("confidence", conf_p)) if p is not None and p < alpha]
    conf_text = "skipped (too few probabilities)" if conf_p is None else f"p={conf_p:.3g}"
    outcome = f"drift in {' and '.join(fired)}" if fired else "no prediction drift"
    details: dict[str, Any] = {
        "class_p_value": class_p,
        "confidence_p_value": conf_p,
        "reference_shares": _shares(counts, 0),
        "current_shares": _shares(counts, 1),
        "reference_mean_confidence": float(np.nanmean(ref_conf)) if usable else None,
        "current_mean_confidence": float(np.nanmean(cur_conf)) if usable else None,
        "drifted": fired,
        "reference_rows": len(reference_classes),
    }
    return Finding(
        CHECK,
        "fired" if fired else "ok",
        min(p for p in (class_p, conf_p) if p is not None),
        alpha,
        f"{rows} predictions: class shares p={class_p:.3g}, confidence {conf_text} (alpha {alpha:g}) -> {outcome}",
        rows=rows,
        details=details,
    )


def from_probabilities(probabilities: np.ndarray, classes: Sequence[str]) -> tuple[list[str], list[float]]:
    """(predicted class, confidence) per row of a rows x classes probability matrix."""
    import numpy as np

    proba = np.asarray(probabilities, dtype="float64")
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ValueError(f"probabilities must be rows x {len(classes)} classes, got shape {proba.shape}")
    best = proba.argmax(axis=1)
    return [str(classes[i]) for i in best], proba.max(axis=1).tolist()


def reference_predictions(
    model: Any, reference: pd.DataFrame, features: Sequence[str]
) -> tuple[list[str], list[float]]:
    """The model's predicted classes and confidences on the reference data (anything with
    ``predict_proba`` and ``classes_``, e.g. the fitted scikit-learn pipeline behind an alias)."""
    if not hasattr(model, "predict_proba") or not hasattr(model, "classes_"):
        raise TypeError(
            f"{type(model).__name__} has no predict_proba/classes_; pass the scikit-learn pipeline "
            "(`load_alias_model(settings, 'champion')`), not an mlflow.pyfunc wrapper"
        )
    return from_probabilities(model.predict_proba(reference[list(features)]), [str(c) for c in model.classes_])


def predictions_from_log(frame: pd.DataFrame) -> tuple[list[str], list[float]]:
    """Predicted classes and confidences from a ``recent_predictions`` frame.

    Only answered rows count (status "ok" with a prediction); the confidence is the largest value
    of the row's ``probabilities`` dict, NaN when the request asked for labels only.
    """
    if frame.empty:
        return [], []
    missing = {"prediction", "probabilities"} - set(frame.columns)
    if missing:
        raise ValueError(f"log frame has no column(s) {sorted(missing)}; read it with serving.log_reader")
    served = frame[frame["prediction"].notna()]
    if "status" in served.columns:
        served = served[served["status"] == "ok"]

    return served["prediction"].astype(str).tolist(), [float(confidence(p)) for p in served["probabilities"]]
