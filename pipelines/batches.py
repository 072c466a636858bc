"""Synthetic "production batches": clean, shifted and deliberately broken data on demand.

Concept: data validation (C06) and data quality as code (C07). A validation suite is code, so it
needs tests, and tests need bad data. This module fabricates it from a seed: ``clean`` batches
are drawn from per-class Gaussians fitted to the reference data (so they look like the real
thing and must pass); three *shift* kinds are valid data whose distribution moved (validation
must let them through, drift monitoring must catch them); and each *corruption* kind is one
classic upstream defect that validation must block. Corruptions start from the clean batch of
the same seed, so a failure can only come from the defect that was injected.

numpy and pandas are imported inside the functions so the CLI can list ``BatchKind`` instantly.
"""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from core.params import DatasetConfig, Params

    ClassFit = tuple[np.ndarray, np.ndarray, float]  # mean vector, covariance matrix, prior


class BatchKind(StrEnum):
    """What kind of batch to generate."""

    CLEAN = "clean"
    COVARIATE_SHIFT = "covariate-shift"
    PRIOR_SHIFT = "prior-shift"
    CONCEPT_SHIFT = "concept-shift"
    NULLS = "nulls"
    WRONG_TYPES = "wrong-types"
    OUT_OF_RANGE = "out-of-range"
    UNKNOWN_CLASS = "unknown-class"
    MISSING_COLUMN = "missing-column"
    EXTRA_COLUMN = "extra-column"
    DUPLICATES = "duplicates"
    EMPTY = "empty"


VALID_KINDS = frozenset({BatchKind.CLEAN, BatchKind.COVARIATE_SHIFT, BatchKind.PRIOR_SHIFT, BatchKind.CONCEPT_SHIFT})
CORRUPT_KINDS = frozenset(set(BatchKind) - VALID_KINDS)
SITES = ("site-a", "site-b", "site-c")


def _fit_classes(reference: pd.DataFrame, cfg: DatasetConfig) -> dict[str, ClassFit]:
    """Mean vector, covariance matrix and prior of every class present in the reference."""
    import numpy as np

    missing = [c for c in cfg.required_columns if c not in reference.columns]
    if missing:
        raise ValueError(f"reference data has no column(s) {missing}; pass the raw dataset (run `mlops-lab ingest`)")
    labels = reference[cfg.target].astype(str)
    known = labels[labels.isin(cfg.classes)]
    fitted: dict[str, ClassFit] = {}
    for cls in cfg.classes:
        rows = reference.loc[labels == cls, cfg.feature_names].astype("float64")
        if len(rows) == 0:
            continue
        mean = rows.mean().fillna(0.0).to_numpy()
        cov = rows.cov().fillna(0.0).to_numpy() if len(rows) > 1 else np.zeros((len(mean), len(mean)))
        fitted[cls] = (mean, cov, len(rows) / len(known))
    if not fitted:
        raise ValueError(f"reference data has none of the classes {cfg.classes} in column {cfg.target!r}")
    return fitted


def _class_counts(weights: dict[str, float], rows: int) -> dict[str, int]:
    """Stratified counts (largest remainder), so class shares follow the weights exactly."""
    total = sum(weights.values())
    raw = {c: rows * w / total for c, w in weights.items()}
    counts = {c: math.floor(v) for c, v in raw.items()}
    for c in sorted(raw, key=lambda c: raw[c] - counts[c], reverse=True)[: rows - sum(counts.values())]:
        counts[c] += 1
    return counts


def _prior_weights(params: Params, fitted: dict[str, ClassFit]) -> dict[str, float]:
    classes = params.dataset.classes
    weights = params.batches.prior_shift.weights
    if weights is None:  # default: the first class dominates
        weights = [0.8] + [0.2 / (len(classes) - 1)] * (len(classes) - 1)
    if len(weights) != len(classes) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"batches.prior_shift.weights needs {len(classes)} non-negative weights, one per class")
    usable = {c: w for c, w in zip(classes, weights, strict=True) if c in fitted and w > 0}
    if not usable:
        raise ValueError("batches.prior_shift.weights give zero weight to every class present in the reference")
    return usable


def _draw(
    fitted: dict[str, ClassFit],
    weights: dict[str, float],
    rows: int,
    cfg: DatasetConfig,
    rng: np.random.Generator,
    unique: bool,
) -> pd.DataFrame:
    """Rows from the class Gaussians: clipped to the valid ranges, rounded; ``unique``: without exact duplicates."""
    import numpy as np
    import pandas as pd

    counts = _class_counts(weights, rows)
    labels = rng.permutation(np.concatenate([np.full(n, c, dtype=object) for c, n in counts.items()]))
    # The valid range shrunk to the measurement grid, so rounding can never leave it (0.05 -> 0.1, not 0.0).
    scale = 10.0**cfg.decimals
    lows = np.ceil(np.array([s.min for s in cfg.features.values()]) * scale - 1e-9) / scale
    highs = np.floor(np.array([s.max for s in cfg.features.values()]) * scale + 1e-9) / scale

    def sample(mask: np.ndarray) -> np.ndarray:
        out = np.empty((int(mask.sum()), len(lows)))
        sub = labels[mask]
        for cls in counts:
            mean, cov, _ = fitted[cls]
            hit = sub == cls
            out[hit] = rng.multivariate_normal(mean, cov, size=int(hit.sum()), method="eigh")
        return np.clip(np.round(out, cfg.decimals), lows, highs)

    values = sample(np.ones(rows, dtype=bool))
    frame = pd.DataFrame(values, columns=cfg.feature_names)
    frame[cfg.target] = pd.Series(labels, dtype=object)
    for _ in range(50):  # redraw duplicates, keeping their labels so class shares stay exact
        dup = frame.duplicated().to_numpy()
        if not unique or not dup.any():
            return frame
        frame.loc[dup, cfg.feature_names] = sample(dup)
    raise RuntimeError(
        f"could not draw {rows} distinct rows at {cfg.decimals} decimals; lower the row count or raise dataset.decimals"
    )


def _corrupt(frame: pd.DataFrame, kind: BatchKind, cfg: DatasetConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Inject exactly one classic upstream defect into a clean batch."""
    import numpy as np

    n = len(frame)
    if n == 0 and kind not in (BatchKind.MISSING_COLUMN, BatchKind.EXTRA_COLUMN, BatchKind.EMPTY):
        raise ValueError(f"a {kind.value} batch needs at least one row")
    feature = str(rng.choice(cfg.feature_names))
    share = max(1, round(0.1 * n))
    rows = rng.choice(n, size=min(share, n), replace=False)
    if kind is BatchKind.NULLS:  # missing features are legal when allow_missing; missing labels never are
        frame.loc[rows, cfg.target if cfg.allow_missing else feature] = np.nan
    elif kind is BatchKind.WRONG_TYPES:  # a locale with decimal commas: "5,1"
        rows = rng.choice(n, size=max(1, n // 4), replace=False)
        digits = max(cfg.decimals, 1)
        frame[feature] = frame[feature].astype(object)
        frame.loc[rows, feature] = [f"{v:.{digits}f}".replace(".", ",") for v in frame.loc[rows, feature]]
    elif kind is BatchKind.OUT_OF_RANGE:  # one feature recorded in millimetres on some rows
        frame = _millimetres(frame, cfg, rng)
    elif kind is BatchKind.UNKNOWN_CLASS:  # an upstream system that spells the classes differently
        frame.loc[rows, cfg.target] = [_unknown_label(str(c), cfg.classes) for c in frame.loc[rows, cfg.target]]
    elif kind is BatchKind.MISSING_COLUMN:
        frame = frame.drop(columns=feature)
    elif kind is BatchKind.EXTRA_COLUMN:
        name = "operator_id"
        while name in frame.columns:
            name += "_x"
        frame[name] = rng.integers(1, 6, size=n)
    elif kind is BatchKind.DUPLICATES:  # a retried upload: 20% of the rows are copies of others
        if n < 2:
            raise ValueError("a duplicates batch needs at least 2 rows")
        k = math.ceil(0.2 * n)
        targets = rng.choice(n, size=k, replace=False)
        order = np.arange(n)
        order[targets] = rng.choice(np.setdiff1d(order, targets), size=k, replace=False)
        frame = frame.iloc[order].reset_index(drop=True)
    elif kind is BatchKind.EMPTY:
        frame = frame.iloc[0:0]
    return frame


def _millimetres(frame: pd.DataFrame, cfg: DatasetConfig, rng: np.random.Generator) -> pd.DataFrame:
    """×10 on 30% of one feature's rows; the feature is one where ×10 really leaves the valid range."""
    import numpy as np

    def leaves(name: str) -> np.ndarray:
        spec = cfg.features[name]
        scaled = frame[name].to_numpy() * 10
        return (scaled < spec.min) | (scaled > spec.max)

    shares = {name: float(leaves(name).mean()) if len(frame) else 0.0 for name in cfg.feature_names}
    best = max(shares.values())
    feature = str(rng.choice([f for f, s in shares.items() if s == best]))
    candidates = np.flatnonzero(leaves(feature))
    k = max(1, round(0.3 * len(frame)))
    if len(candidates) == 0:  # ×10 stays in range everywhere: fall back to a sensor glitch
        spec = cfg.features[feature]
        frame.loc[rng.choice(len(frame), size=k, replace=False), feature] = spec.max + (spec.max - spec.min)
        return frame
    rows = rng.choice(candidates, size=min(k, len(candidates)), replace=False)
    frame.loc[rows, feature] = np.round(frame.loc[rows, feature] * 10, cfg.decimals)
    return frame


def _unknown_label(cls: str, classes: list[str]) -> str:
    label = cls.upper() if cls.upper() != cls else f"{cls}_new"
    while label in classes:
        label += "_new"
    return label


def generate_batch(
    kind: BatchKind | str,
    reference: pd.DataFrame,
    params: Params,
    rows: int | None = None,
    seed: int = 0,
    with_source: bool = False,
    unique_rows: bool | None = None,
) -> pd.DataFrame:
    """One synthetic production batch of the given kind, reproducible from its seed.

    Args:
        kind: a ``BatchKind`` or its value, e.g. ``"out-of-range"``.
        reference: the raw dataset the clean distribution is fitted to.
        params: the parameters (``dataset`` contract and ``batches`` knobs).
        rows: number of rows (default ``params.batches.rows``).
        seed: random seed; the same seed gives the same batch.
        with_source: add the optional ``dataset.group_column`` with a few synthetic sites.
        unique_rows: draw no exact duplicate rows (default ``dataset.unique_rows``); a file to score may repeat
            rows, and a million distinct rows do not fit on a one-decimal grid.
    """
    import numpy as np

    try:
        kind = BatchKind(kind)
    except ValueError:
        raise ValueError(f"unknown batch kind {kind!r}; choose one of {[k.value for k in BatchKind]}") from None
    cfg, knobs = params.dataset, params.batches
    n = knobs.rows if rows is None else rows
    if n < 0:
        raise ValueError(f"rows must be >= 0, got {n}")
    fitted = _fit_classes(reference, cfg)
    weights = {c: prior for c, (_, _, prior) in fitted.items()}
    if kind is BatchKind.PRIOR_SHIFT:
        weights = _prior_weights(params, fitted)
    if kind is BatchKind.COVARIATE_SHIFT:
        moved = knobs.covariate_shift.features or cfg.feature_names
        unknown = set(moved) - set(cfg.feature_names)
        if unknown:
            raise ValueError(f"batches.covariate_shift.features: unknown feature(s) {sorted(unknown)}")
        std = reference[cfg.feature_names].astype("float64").std().fillna(0.0)
        offset = np.array([knobs.covariate_shift.shift_std * std[f] if f in moved else 0.0 for f in cfg.feature_names])
        fitted = {c: (mean + offset, cov, prior) for c, (mean, cov, prior) in fitted.items()}

    rng = np.random.default_rng(seed)
    frame = _draw(fitted, weights, n, cfg, rng, cfg.unique_rows if unique_rows is None else unique_rows)
    if kind is BatchKind.CONCEPT_SHIFT:  # same inputs as clean, two labels exchanged
        a, b = knobs.concept_shift.swap or (cfg.classes[-2], cfg.classes[-1])
        if {a, b} - set(cfg.classes):
            raise ValueError(f"batches.concept_shift.swap: {a!r} and {b!r} must both be in dataset.classes")
        frame[cfg.target] = frame[cfg.target].map({a: b, b: a}).fillna(frame[cfg.target])
    if with_source:
        if cfg.group_column is None:
            raise ValueError("with_source needs dataset.group_column in params.yaml (e.g. `group_column: source`)")
        frame[cfg.group_column] = np.random.default_rng([seed, 1]).choice(SITES, size=n, p=[0.5, 0.3, 0.2])
    if kind in CORRUPT_KINDS:
        frame = _corrupt(frame, kind, cfg, rng)
    return frame


def write_batch(frame: pd.DataFrame, path: str | Path, kind: BatchKind | str, decimals: int | None = None) -> Path:
    """Write a batch as CSV (Parquet for a ``.parquet`` name); an ``empty`` batch becomes a 0-byte file, as a
    failed export would."""
    from pipelines.data import write_csv

    out = Path(path)
    if BatchKind(kind) is BatchKind.EMPTY:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"")
        return out
    if out.suffix.lower() == ".parquet":
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(out, index=False)
        return out
    return write_csv(frame, path, decimals)
