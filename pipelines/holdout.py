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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.data import build_raw_frame, file_md5, read_csv, write_csv

if TYPE_CHECKING:
    from core.params import DatasetConfig, IngestParams, Params
    from core.settings import Settings


@dataclass(frozen=True)
class Holdout:
    """The holdout rows, their file and the file's md5 (the same hash DVC records)."""

    frame: pd.DataFrame
    path: Path
    md5: str

    @property
    def rows(self) -> int:
        return len(self.frame)


def draw_holdout(raw: pd.DataFrame, cfg: DatasetConfig, fraction: float, seed: int) -> pd.DataFrame:
    """A seeded, stratified sample of the raw rows (same rows for the same data, fraction and seed)."""
    from sklearn.model_selection import train_test_split

    _, held = train_test_split(raw.index, test_size=fraction, stratify=raw[cfg.target], random_state=seed)
    return raw.loc[sorted(held)].reset_index(drop=True)


def write_holdout(cfg: DatasetConfig, ingest: IngestParams, fraction: float, seed: int, path: str | Path) -> Path:
    """Write the holdout file from the ingest source; byte-identical on every run and machine.

    Written to a temporary name and renamed, so a reader never sees half a file.
    """
    frame = draw_holdout(build_raw_frame(cfg, ingest), cfg, fraction, seed)
    out = Path(path)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    write_csv(frame, tmp, cfg.decimals)
    tmp.replace(out)
    return out


def holdout_path(settings: Settings, params: Params) -> Path:
    return settings.resolve(params.gate.holdout.path)


def load_holdout(settings: Settings, params: Params) -> Holdout:
    """The holdout file named in params.yaml, written from the ingest source if it is missing.

    Writing it here is safe because it is deterministic: the same bytes (and md5) as ``mlops-lab
    ingest`` writes and DVC tracks. The md5 recorded on each run is what makes comparisons checkable.
    """
    path = holdout_path(settings, params)
    if not path.exists():
        hp = params.gate.holdout
        write_holdout(params.dataset, params.ingest, hp.fraction, hp.seed, path)
    return Holdout(read_csv(path), path, file_md5(path))


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
