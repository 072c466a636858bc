"""K-S, PSI and chi-square worked through on our own data, for the drift-kinds comparison page.

Concept: the statistics behind drift checks (C32, C33), shown with numbers a learner can recompute.
The reference is raw iris exactly as ``mlops-lab ingest`` writes it (``pipelines.data.build_raw_frame``,
the data the first champion trains on and the drift study's reference); the windows are seeded
production batches from ``pipelines.batches.generate_batch``, the same generator the drift study and
the demos use, with the covariate shift sized by ``bench.drift_study.with_shift``.

Nothing here is a second implementation of a check. K-S is scipy's ``ks_2samp`` (what Evidently runs
for our data drift), the predicted-class test is ``monitoring.prediction_drift.class_shift`` (what the
prediction-drift check runs), and PSI is laid open bin by bin the way Evidently computes it when
``monitoring.data_drift.method`` is ``psi``: equal-width bins over the pooled sample (numpy's Sturges
rule) once the reference has more than 20 distinct values, an empty bin's share replaced by a small
floor so the logarithm stays finite. ``cross_check`` runs our own ``monitoring.data_drift`` (Evidently)
on the same window and the page prints both, so a disagreement could not go unseen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.drift_study import with_shift
from monitoring.prediction_drift import ClassShift, class_shift, reference_predictions
from pipelines.batches import generate_batch

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from core.params import Params

FEATURE = "sepal_length"
SEED = 0
SMALL_SHIFT = 0.3  # std: where the drift study's detection starts against the 149-row reference
PSI_RULES = ((0.1, "little or no shift"), (0.25, "a moderate shift: look"), (float("inf"), "a large shift: act"))
MIN_DISTINCT = 21  # Evidently bins a numeric column only above 20 distinct reference values


@dataclass(frozen=True)
class PsiBin:
    """One PSI bin: its edges, the counts and shares on each side, and its share of the PSI."""

    low: float
    high: float
    reference_count: int
    current_count: int
    reference_share: float  # after the empty-bin floor, as the PSI uses it
    current_share: float
    contribution: float  # (reference - current) * ln(reference / current)


@dataclass(frozen=True)
class Psi:
    bins: tuple[PsiBin, ...]
    floor: tuple[float, float]  # the share put in an empty reference / current bin

    @property
    def value(self) -> float:
        return sum(b.contribution for b in self.bins)


@dataclass(frozen=True)
class KsResult:
    statistic: float
    p_value: float
    location: float  # the value where the two empirical CDFs are furthest apart
    reference_cdf: float  # share of reference values <= location
    current_cdf: float


@dataclass(frozen=True)
class WindowStats:
    """The three statistics of one window against the reference."""

    name: str
    ks: KsResult
    psi: float
    classes: ClassShift


@dataclass(frozen=True)
class WorkedExample:
    """Everything the drift-kinds page prints: the worked window in full and a summary of others."""

    reference_rows: int
    window_rows: int
    feature: str
    shift_std: float
    ks: KsResult
    psi: Psi
    classes: ClassShift  # the prior-shift window, where the class mix really moves
    summary: tuple[WindowStats, ...]
    evidently_ks_p: float
    evidently_psi: float


def _floor(shares: np.ndarray) -> float:
    smallest = float(shares[shares > 0].min())
    return smallest / 10**6 if smallest <= 0.0001 else 0.0001


def psi(reference: Sequence[float] | pd.Series, current: Sequence[float] | pd.Series) -> Psi:
    """PSI of a numeric feature, bin by bin, binned as Evidently bins it.

    Raises:
        ValueError: the reference has 20 or fewer distinct values (Evidently then counts each value as
            a category instead of binning, which this worked example does not show).
    """
    import numpy as np

    ref, cur = np.asarray(reference, dtype="float64"), np.asarray(current, dtype="float64")
    if len(np.unique(ref)) < MIN_DISTINCT:
        raise ValueError(f"the reference has fewer than {MIN_DISTINCT} distinct values; pick a continuous feature")
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    ref_n, cur_n = np.histogram(ref, edges)[0], np.histogram(cur, edges)[0]
    ref_share, cur_share = ref_n / len(ref), cur_n / len(cur)
    floor = (_floor(ref_share), _floor(cur_share))
    ref_used, cur_used = np.where(ref_share == 0, floor[0], ref_share), np.where(cur_share == 0, floor[1], cur_share)
    parts = (ref_used - cur_used) * np.log(ref_used / cur_used)
    bins = tuple(
        PsiBin(float(lo), float(hi), int(rn), int(cn), float(rs), float(cs), float(c))
        for lo, hi, rn, cn, rs, cs, c in zip(
            edges[:-1], edges[1:], ref_n, cur_n, ref_used, cur_used, parts, strict=True
        )
    )
    return Psi(bins, floor)


def psi_rule(value: float) -> str:
    """The usual rule of thumb for a PSI value (a convention, not a test)."""
    return next(text for limit, text in PSI_RULES if value < limit)


def ks(reference: Sequence[float] | pd.Series, current: Sequence[float] | pd.Series) -> KsResult:
    """scipy's two-sample K-S test, with the point of largest CDF gap and both CDFs there."""
    import numpy as np
    from scipy.stats import ks_2samp

    ref, cur = np.asarray(reference, dtype="float64"), np.asarray(current, dtype="float64")
    result = ks_2samp(ref, cur)
    at = float(result.statistic_location)
    return KsResult(
        float(result.statistic), float(result.pvalue), at, float((ref <= at).mean()), float((cur <= at).mean())
    )


def windows(params: Params, raw: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The seeded windows of the summary (``monitoring.window`` rows each), by name."""
    rows, configured = params.monitoring.window, params.batches.covariate_shift.shift_std

    def batch(kind: str, knobs: Params = params) -> pd.DataFrame:
        return generate_batch(kind, raw, knobs, rows=rows, seed=SEED)

    return {
        "clean": batch("clean"),
        f"covariate shift {SMALL_SHIFT:g} std": batch("covariate-shift", with_shift(params, SMALL_SHIFT)),
        f"covariate shift {configured:g} std": batch("covariate-shift"),
        "prior shift": batch("prior-shift"),
        "concept shift": batch("concept-shift"),
    }


def cross_check(params: Params, raw: pd.DataFrame, window: pd.DataFrame) -> tuple[float, float]:
    """Evidently's K-S p-value and PSI of ``FEATURE`` through our own ``monitoring.data_drift``."""
    from monitoring.data_drift import data_drift

    features, mon = params.dataset.feature_names, params.monitoring
    default = mon.model_copy(update={"data_drift": mon.data_drift.model_copy(update={"method": "ks"})})
    with_psi = mon.model_copy(update={"data_drift": mon.data_drift.model_copy(update={"method": "psi"})})
    ks_p = data_drift(raw, window, features, default).details["features"][FEATURE]["score"]
    psi_value = data_drift(raw, window, features, with_psi).details["features"][FEATURE]["score"]
    return float(ks_p), float(psi_value)


def compute(params: Params) -> WorkedExample:
    """The worked example: reference = raw iris, windows of ``monitoring.window`` rows, seed ``SEED``."""
    from pipelines.data import build_raw_frame
    from pipelines.fit import fit_and_evaluate

    features = params.dataset.feature_names
    raw = build_raw_frame(params.dataset, params.ingest)
    model = fit_and_evaluate(raw, params).pipeline
    ref_classes, _ = reference_predictions(model, raw, features)
    by_name = windows(params, raw)
    summary = []
    for name, window in by_name.items():
        classes, _ = reference_predictions(model, window, features)
        stats = WindowStats(
            name,
            ks(raw[FEATURE], window[FEATURE]),
            psi(raw[FEATURE], window[FEATURE]).value,
            class_shift(ref_classes, classes),
        )
        summary.append(stats)
    worked, prior = by_name[f"covariate shift {SMALL_SHIFT:g} std"], by_name["prior shift"]
    evidently_ks_p, evidently_psi = cross_check(params, raw, worked)
    return WorkedExample(
        reference_rows=len(raw),
        window_rows=len(worked),
        feature=FEATURE,
        shift_std=SMALL_SHIFT,
        ks=ks(raw[FEATURE], worked[FEATURE]),
        psi=psi(raw[FEATURE], worked[FEATURE]),
        classes=class_shift(ref_classes, reference_predictions(model, prior, features)[0]),
        summary=tuple(summary),
        evidently_ks_p=evidently_ks_p,
        evidently_psi=evidently_psi,
    )


def bin_label(b: PsiBin) -> str:
    return f"{b.low:.2f}–{b.high:.2f}"


def plot_psi_bins(example: Psi, path: Path) -> dict[str, list[float]]:
    """Draw reference vs current share per bin to ``path`` (PNG); return the bar heights as drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(example.bins))
    fig, ax = plt.subplots(figsize=(7.5, 3.2), dpi=100)
    try:
        ref = ax.bar(x - 0.2, [b.reference_share for b in example.bins], width=0.4, label="reference (raw iris)")
        cur = ax.bar(x + 0.2, [b.current_share for b in example.bins], width=0.4, label="current window")
        ax.set_xticks(x, [bin_label(b) for b in example.bins], rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("share of rows")
        ax.set_xlabel(f"{FEATURE} bin (cm)")
        ax.set_title(f"PSI = {example.value:.3f}: the sum over bins of (ref - cur) x ln(ref / cur)", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", metadata={"Software": None})
        return {
            "reference": [float(bar.get_height()) for bar in ref.patches],
            "current": [float(bar.get_height()) for bar in cur.patches],
        }
    finally:
        plt.close(fig)
