"""Raw data in, typed frames out: the ingest step and the one CSV loader everything uses.

Concept: data versioning (C05) and immutable raw data. ``ingest`` writes ``data/raw/iris.csv``
deterministically from scikit-learn's bundled copy (no network), so every clone produces the same
bytes and the same DVC md5. ``file_md5`` is that hash: it is logged with every model as its data
lineage and is how ``reproduce`` finds the exact training data again in the DVC cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.params import DatasetConfig, IngestParams
from pipelines.data_errors import DataFileError as DataFileError


def _sklearn_frame(source: str) -> tuple[pd.DataFrame, list[str]]:
    from sklearn import datasets

    if source == "sklearn-iris":
        bunch = datasets.load_iris(as_frame=True)
        renames = {c: c.replace(" (cm)", "").replace(" ", "_") for c in bunch.feature_names}
    elif source == "sklearn-wine":
        bunch = datasets.load_wine(as_frame=True)
        renames = {c: c.lower().replace("/", "_per_").replace(" ", "_") for c in bunch.feature_names}
    else:  # pragma: no cover - guarded by the IngestParams literal
        raise ValueError(f"unknown ingest source {source!r}")
    frame = bunch.frame.rename(columns=renames)
    return frame, [str(n) for n in bunch.target_names]


def build_raw_frame(cfg: DatasetConfig, ingest: IngestParams) -> pd.DataFrame:
    """The raw dataset as the contract describes it: named columns, class names, unique rows.

    Exact duplicate rows are dropped (iris has one) so that "no duplicate rows" can be a hard
    data-quality rule for every later batch.
    """
    frame, names = _sklearn_frame(ingest.source)
    frame[cfg.target] = [names[i] for i in frame.pop("target")]
    missing = [c for c in cfg.required_columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"ingest source {ingest.source!r} has no column(s) {missing}; check dataset.features in params.yaml"
        )
    out = frame[cfg.required_columns].round(cfg.decimals)
    if cfg.unique_rows:
        out = out.drop_duplicates(ignore_index=True)
    return out


def write_csv(frame: pd.DataFrame, path: str | Path, decimals: int | None = None) -> Path:
    """Write a CSV byte-identically on every platform (fixed float format and line ending)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    float_format = f"%.{decimals}f" if decimals is not None else None
    frame.to_csv(out, index=False, float_format=float_format, lineterminator="\n")
    return out


def ingest(cfg: DatasetConfig, ingest_params: IngestParams, path: str | Path) -> Path:
    """Produce the raw dataset file (the first DVC stage)."""
    return write_csv(build_raw_frame(cfg, ingest_params), path, cfg.decimals)


def read_csv(path: str | Path) -> pd.DataFrame:
    """Load a CSV without coercing anything: types are checked by validation, not guessed away.

    An empty (0-byte) file becomes an empty frame so validation can report it like any other
    defect instead of the loader crashing.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"data file not found: {p}")
    try:
        return pd.read_csv(p)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def file_md5(path: str | Path) -> str:
    """MD5 of the file's bytes: the same hash DVC 3 records in dvc.lock and uses in its cache."""
    digest = hashlib.md5()  # noqa: S324 - content address, not security
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def split_features_target(frame: pd.DataFrame, cfg: DatasetConfig) -> tuple[pd.DataFrame, pd.Series]:
    """Feature matrix (contract order, float) and label series."""
    return frame[cfg.feature_names].astype("float64"), frame[cfg.target].astype(str)


@dataclass(frozen=True)
class LoadedData:
    """A data file read and fingerprinted: its rows, where it is, and its md5 (the hash DVC records)."""

    frame: pd.DataFrame
    path: Path
    md5: str

    @property
    def rows(self) -> int:
        return len(self.frame)


def load_data(path: Path) -> LoadedData:
    """Read a data file and fingerprint it (the training file, the gate's holdout).

    The file is refused before anything else reads it, each time in one sentence that says what to do:

    Raises:
        FileNotFoundError: no such file (on a fresh clone, `mlops-lab ingest` writes the raw data).
        DataFileError: not UTF-8, not a CSV table, or empty (no header or no rows).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"data file not found: {p} (on a fresh clone, run `mlops-lab ingest` first; your own CSV: check its path)"
        )
    try:
        frame = pd.read_csv(p)
    except UnicodeDecodeError as err:  # the message, never the bytes: they would fill the log
        raise DataFileError(
            f"{p} is not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}): save it as UTF-8, "
            f"e.g. `iconv -f latin1 -t utf-8 {p.name} > {p.stem}-utf8.csv`"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{p} is empty: no header, no rows") from None
    except pd.errors.ParserError as err:
        raise DataFileError(f"{p} is not a CSV table: {str(err).strip()[:200]}") from None
    if frame.empty:
        raise DataFileError(f"{p} has a header but no rows")
    return LoadedData(frame=frame, path=p, md5=file_md5(p))
