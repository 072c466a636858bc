"""The gate's holdout: rows set aside once, at ingest, that no model ever trains on.

Concept: an honest comparison needs data neither model has seen (C14, C10). The train/test split
inside one training run changes whenever the training file changes (a retrain adds production rows),
so after a retrain the champion would be partly scored on rows it trained on. The holdout fixes
that: a seeded, stratified share of the raw data (``gate.holdout`` in params.yaml) written as its own
file by ``mlops-lab ingest`` and tracked by DVC, removed from every training set by feature values
(``without_holdout``), and the only data the gate scores candidate and champion on. Its md5 is
recorded on every run (tag ``holdout_md5``), so a comparison on a different holdout is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.data import LoadedData, build_raw_frame, load_data, write_csv

if TYPE_CHECKING:
    from core.params import DatasetConfig, IngestParams, Params
    from core.settings import Settings


def draw_holdout(raw: pd.DataFrame, cfg: DatasetConfig, fraction: float, seed: int) -> pd.DataFrame:
    """A seeded, stratified sample of the raw rows (same rows for the same data, fraction and seed)."""
    from sklearn.model_selection import train_test_split

    _, held = train_test_split(raw.index, test_size=fraction, stratify=raw[cfg.target], random_state=seed)
    return raw.loc[sorted(held)].reset_index(drop=True)


def write_holdout(cfg: DatasetConfig, ingest: IngestParams, fraction: float, seed: int, path: str | Path) -> Path:
    """Write the holdout file from the ingest source; byte-identical on every run and machine.

    Written to a temporary name and renamed, so a reader never sees half a file.
    """
    return _write_frame(draw_holdout(build_raw_frame(cfg, ingest), cfg, fraction, seed), Path(path), cfg.decimals)


def _write_frame(frame: pd.DataFrame, out: Path, decimals: int | None) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    write_csv(frame, tmp, decimals)
    tmp.replace(out)
    return out


def holdout_path(settings: Settings, params: Params) -> Path:
    return settings.resolve(params.gate.holdout.path)


class HoldoutMismatchError(ValueError):
    """The holdout file belongs to another dataset (its columns are not this contract's)."""


def load_holdout(settings: Settings, params: Params, data: pd.DataFrame | None = None) -> LoadedData:
    """The holdout file named in params.yaml, written if it is missing.

    Missing, it is written from the ingest source: deterministic, so the same bytes (and md5) as
    ``mlops-lab ingest`` writes and DVC tracks. A dataset the ingest source cannot build (your own CSV,
    `gate.holdout.path` pointing at a file of its own) has its holdout drawn from ``data``, the file its
    first training reads, and kept from then on: later trainings, retrains included, reuse it. The md5
    recorded on each run is what makes comparisons checkable.

    Raises:
        HoldoutMismatchError: the file lacks this dataset's columns (it was drawn for another dataset).
    """
    path = holdout_path(settings, params)
    cfg, hp = params.dataset, params.gate.holdout
    if not path.exists():
        try:
            write_holdout(cfg, params.ingest, hp.fraction, hp.seed, path)
        except (ValueError, KeyError):
            if data is None:
                raise
            _write_frame(draw_holdout(data.reset_index(drop=True), cfg, hp.fraction, hp.seed), path, cfg.decimals)
    holdout = load_data(path)
    if missing := [c for c in cfg.required_columns if c not in holdout.frame.columns]:
        raise HoldoutMismatchError(
            f"the holdout {path} is not of dataset {cfg.name!r} (no column(s) {', '.join(missing[:5])}): point "
            "gate.holdout.path in your params file at a file of its own (the first `train` draws it from its data)"
        )
    return holdout


def _keys(frame: pd.DataFrame, cfg: DatasetConfig) -> pd.Series:
    rounded = frame[cfg.feature_names].astype("float64").round(cfg.decimals)
    return pd.Series(list(map(tuple, rounded.to_numpy())), index=frame.index)


def without_holdout(frame: pd.DataFrame, holdout: pd.DataFrame, cfg: DatasetConfig) -> pd.DataFrame:
    """The rows of ``frame`` whose feature values appear nowhere in the holdout.

    Matched on features (at the contract's precision), not on the label: a training row with a
    holdout row's inputs would let a model memorise the answer it is later graded on.
    """
    held = set(_keys(holdout, cfg))
    keep = ~_keys(frame, cfg).isin(held)
    return frame.loc[keep.to_numpy()]
