"""Feature-attribution drift: does the model still lean on the same features as when it was trained?

Concept: feature-attribution drift (C35). Data drift asks whether the inputs moved; attribution
drift asks whether the *reasons* behind the predictions moved. Per feature we measure permutation
importance: shuffle one feature's column, re-score, and see how much accuracy is lost. We do it on
the reference data and on the live window, normalise each side's importances to shares (they sum
to 1, so a window that is simply harder does not count as drift), and score the change as half the
L1 distance between the two share vectors: 0 = the same attributions, 1 = a completely different
set of features doing the work. Spearman's rank correlation of the shares is reported alongside,
since "the top feature changed" is what a person asks first.

Which targets? With feedback labels (``window_labels``), importance on both sides is measured
against the truth: "how much does this feature help the model get it right here". Without labels
the model's own predictions serve as targets on both sides, and importance becomes "how many
decisions flip when this feature is scrambled": how much the model's decisions *depend* on each
feature in this traffic. That version needs no labels and still sees inputs moving into a region
where other features decide, but it is blind to concept drift (same inputs, new labels), which the
labelled version and the concept-drift check catch.

Why not SHAP: it would add a heavy dependency (and a compiled one) to answer a question that needs
one number per feature; permutation importance is model-agnostic, ships with scikit-learn, and
takes milliseconds on a few thousand rows. Raw input features are permuted, so attributions are
to what the caller sends, with derived features moving along inside the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from core.findings import Finding

if TYPE_CHECKING:
    import pandas as pd

    from core.params import AttributionDriftParams

CHECK = "attribution_drift"
Target = Literal["labels", "predictions"]


@dataclass(frozen=True)
class Attribution:
    """Permutation importance on one side: mean accuracy lost per feature, and its share of the total."""

    importance: dict[str, float]
    std: dict[str, float]
    shares: dict[str, float]  # importances clipped at 0 and normalised; all 0 when nothing mattered
    rows: int


def _sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=max_rows, random_state=seed) if len(frame) > max_rows else frame


def attribution(
    model: Any, X: pd.DataFrame, y: Sequence[Any], features: Sequence[str], n_repeats: int, seed: int
) -> Attribution:
    """Permutation importance (accuracy) of each feature in ``features`` on ``X`` with targets ``y``."""
    import numpy as np
    from sklearn.inspection import permutation_importance

    result = permutation_importance(model, X, np.asarray(y), scoring="accuracy", n_repeats=n_repeats, random_state=seed)
    names = list(X.columns)
    wanted = [names.index(f) for f in features]
    mean = np.asarray(result.importances_mean)[wanted]
    std = np.asarray(result.importances_std)[wanted]
    positive = np.clip(mean, 0.0, None)  # a negative importance is noise: shuffling never truly helps
    shares = positive / positive.sum() if positive.sum() > 0 else positive
    return Attribution(
        importance=dict(zip(features, map(float, mean), strict=True)),
        std=dict(zip(features, map(float, std), strict=True)),
        shares=dict(zip(features, map(float, shares), strict=True)),
        rows=len(X),
    )


def attribution_change(reference: dict[str, float], current: dict[str, float]) -> tuple[float, float | None]:
    """Half the L1 distance between two share vectors (0..1), and Spearman's rank correlation (None if undefined)."""
    import math

    from scipy.stats import spearmanr

    features = list(reference)
    a, b = [reference[f] for f in features], [current[f] for f in features]
    distance = 0.5 * sum(abs(x - y) for x, y in zip(a, b, strict=True))
    if len(set(a)) < 2 or len(set(b)) < 2:  # a rank correlation needs two different values on each side
        return distance, None
    rho = float(spearmanr(a, b)[0])
    return distance, None if math.isnan(rho) else rho


def check_attribution_drift(
    model: Any,
    reference: pd.DataFrame,
    window: pd.DataFrame,
    features: Sequence[str],
    params: AttributionDriftParams,
    *,
    reference_labels: pd.Series | None = None,
    window_labels: pd.Series | None = None,
    min_rows: int = 1,
) -> Finding:
    """Compare permutation-importance shares on the reference and on the window.

    Args:
        model: a fitted scikit-learn estimator or pipeline taking the raw ``features`` columns.
        reference, window: frames holding at least the ``features`` columns.
        features: the features to attribute to (the model's input columns).
        params: ``params.monitoring.attribution_drift`` (n_repeats, seed, max_rows, threshold).
        reference_labels, window_labels: true labels, aligned with the frames' index. Labels are used
            only when both are given; otherwise the model's own predictions are the targets on both sides.
        min_rows: fewer window rows than this: inconclusive.
    """
    if (window_labels is None) != (reference_labels is None):
        raise ValueError("pass both reference_labels and window_labels, or neither (then predictions are targets)")
    threshold = params.threshold
    if len(window) < min_rows:  # first: an empty prediction log gives a window without any columns
        summary = f"{len(window)} window rows, need {min_rows}: too few to estimate importances"
        return Finding(CHECK, "inconclusive", None, threshold, summary, rows=len(window))
    missing = sorted((set(features) - set(reference.columns)) | (set(features) - set(window.columns)))
    if missing:
        raise ValueError(f"feature column(s) {missing} missing from the reference or the window")
    target: Target = "predictions" if window_labels is None else "labels"

    sides = {}
    for name, frame, labels in (("reference", reference, reference_labels), ("window", window, window_labels)):
        X = _sample(frame, params.max_rows, params.seed)[list(features)]
        y = model.predict(X) if labels is None else labels.loc[X.index]
        sides[name] = attribution(model, X, y, features, params.n_repeats, params.seed)
    ref, cur = sides["reference"], sides["window"]
    details: dict[str, Any] = {
        "target": target,
        "reference": asdict(ref),
        "window": asdict(cur),
        "n_repeats": params.n_repeats,
    }
    if not any(ref.shares.values()) or not any(cur.shares.values()):
        empty = "reference" if not any(ref.shares.values()) else "window"
        summary = (
            f"shuffling any one feature leaves the accuracy against the {target} on the {empty} unchanged: "
            "nothing to attribute "
            "(one class only, or features stuck at constant values: see the data drift check)"
        )
        return Finding(CHECK, "inconclusive", None, threshold, summary, rows=cur.rows, details=details)

    score, rho = attribution_change(ref.shares, cur.shares)
    details["spearman"] = rho
    top_ref, top_cur = max(ref.shares, key=ref.shares.__getitem__), max(cur.shares, key=cur.shares.__getitem__)
    fired = score > threshold
    summary = (
        f"attribution shift {score:.2f} {'>' if fired else '<='} {threshold} ({target} as targets); "
        f"top feature {top_ref} ({ref.shares[top_ref]:.0%}) -> {top_cur} ({cur.shares[top_cur]:.0%})"
    )
    return Finding(CHECK, "fired" if fired else "ok", score, threshold, summary, rows=cur.rows, details=details)
