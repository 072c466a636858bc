"""Offline batch scoring: a large file scored in chunks by one registered version, resumable, with lineage.

Concept: batch inference at scale (C61). The endpoint takes request-sized batches (C20); a nightly file of
a million rows goes here instead. The file is staged once as Parquet with one row group per chunk, so any
worker (a thread, a Dask worker process, a worker on another machine that sees the same folder) reads its
own chunk and nothing else. Each chunk is checked against the same data contract the API applies
(`serving.contract.RequestContract`; a row that breaks it is written with its reason and never scored),
scored by `serving.predict.score` on the model the service would load (`serving.model_cache.load_served_model`),
and written as one Parquet part file.

Exactly once, also across crashes: a part file appears whole or not at all (written to a temporary name,
flushed, then renamed over), and carries in its footer which job, version and chunk it holds. A re-run reads
the job file of the folder, skips every chunk whose part is there and belongs to that job, and scores the
rest; a chunk scored twice (a retried task, a worker the scheduler thought lost) writes the same bytes under
the same name. The job file pins the input's sha256 and the model version: a folder never mixes two models
or two inputs, and a resume after the champion moved is refused instead of silently mixed.

Plain functions on plain data; the Prefect flow and its task runners (threads or Dask) are in
`flows.batch_scoring_flow`.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.digests import file_sha256

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from serving.contract import RequestContract

JOB_FILE = "_job.json"
LOCK_FILE = "_job.lock"
MANIFEST_FILE = "_manifest.json"
STAGED_FILE = "_input.parquet"
PART_PREFIX = "part-"
META_KEY = b"mlops_lab.batch"
DEFAULT_CHUNK_ROWS = 100_000
ROW, PREDICTION, ERROR = "row", "prediction", "error"  # columns every part file has
PROBA_PREFIX = "proba_"  # and one per class


class BatchError(RuntimeError):
    """A batch job refused before it scored anything: unreadable input, missing columns, a foreign folder."""


@dataclass(frozen=True)
class BatchJob:
    """What one output folder holds: which input (by sha256), which model version, cut into which chunks."""

    input_path: str
    input_sha256: str
    output_dir: str
    model_name: str
    version: str
    run_id: str
    features: tuple[str, ...]
    passthrough: tuple[str, ...]  # the input's other columns (ids, groups), copied to the output unchanged
    rows: int
    chunk_rows: int

    @property
    def chunks(self) -> int:
        return -(-self.rows // self.chunk_rows)

    @property
    def staged(self) -> Path:
        return Path(self.output_dir) / STAGED_FILE

    def bounds(self, index: int) -> tuple[int, int]:
        """Rows ``[start, stop)`` of chunk ``index`` in the input."""
        start = index * self.chunk_rows
        return start, min(start + self.chunk_rows, self.rows)

    def part(self, index: int) -> Path:
        return Path(self.output_dir) / f"{PART_PREFIX}{index:05d}.parquet"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BatchJob:
        raw = json.loads(text)
        raw["features"], raw["passthrough"] = tuple(raw["features"]), tuple(raw["passthrough"])
        return cls(**raw)


@dataclass(frozen=True)
class ChunkResult:
    """One chunk's outcome: its rows, how many were scored and refused, and whether it was already done."""

    index: int
    rows: int
    scored: int
    rejected: int
    skipped: bool = False


@dataclass(frozen=True)
class BatchSummary:
    """A finished job: the totals read back from the part files, and what this run itself did."""

    job: BatchJob
    scored: int
    rejected: int
    chunks_scored: int  # by this run
    chunks_skipped: int  # finished by an earlier run
    seconds: float
    runner: str

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "job"}
        return {"job": asdict(self.job), **out, "rows_per_s": round(self.job.rows / max(self.seconds, 1e-9))}

    def line(self) -> str:
        return (
            f"{self.job.rows:,} rows scored by {self.job.model_name} v{self.job.version} in {self.job.chunks} chunks "
            f"({self.chunks_scored} now, {self.chunks_skipped} already done): {self.scored:,} scored, "
            f"{self.rejected:,} refused by the contract; {self.seconds:.1f} s on {self.runner}"
        )


@contextmanager
def folder_lock(output_dir: Path) -> Iterator[None]:
    """This process holds the output folder for the duration; another run on it is refused, not interleaved.

    An advisory ``flock`` on ``_job.lock``: the kernel releases it when the holder exits, even killed, so a crash
    never leaves the folder locked. It guards the runs that start jobs; the workers only write part files.

    Raises:
        BatchError: another run holds the folder.
    """
    import fcntl

    output_dir.mkdir(parents=True, exist_ok=True)
    with (output_dir / LOCK_FILE).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchError(
                f"another batch-score run holds {output_dir}; wait for it, or score into another folder"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_leftovers(output_dir: Path) -> list[str]:
    """Delete the temporary files a killed run left (a part, the staged input or the job file half written).

    Called when a run starts, under the folder's lock: no other run of this folder is writing. A temporary
    file is never read (only renamed into place by the process that wrote it), so this frees disk, nothing else.
    """
    names = (f"{PART_PREFIX}*", STAGED_FILE, JOB_FILE, MANIFEST_FILE)
    removed = []
    for name in names:
        for leftover in output_dir.glob(f".{name}.*.tmp"):
            leftover.unlink(missing_ok=True)
            removed.append(leftover.name)
    return removed


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write`` to a unique temporary name beside ``path``, flush it to disk, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _record_batches(path: Path) -> tuple[list[str], Iterator[pa.RecordBatch]]:
    """The input's column names and its rows as a stream of Arrow record batches (CSV or Parquet by suffix).

    A CSV file has no types: every column is read as text (an empty field as missing), and the features are
    parsed per row when a chunk is scored, so one bad value refuses its own row, not the file.
    """
    import csv

    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as handle:  # a BOM is not part of the first name
                header = next(csv.reader(handle), [])
            if not header:
                raise BatchError(f"cannot read {path}: it has no header line")
            text = pcsv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=True)
            reader = pcsv.open_csv(path, convert_options=text)
            return list(reader.schema.names), iter(reader)
        if suffix in (".parquet", ".pq"):
            parquet = pq.ParquetFile(path)
            return list(parquet.schema_arrow.names), parquet.iter_batches(batch_size=65_536)
    except (OSError, UnicodeDecodeError, pa.ArrowInvalid) as err:
        raise BatchError(f"cannot read {path}: {err}") from None
    raise BatchError(f"{path}: score a .csv or .parquet file, not {suffix or 'a file without suffix'}")


def _stage(source: Path, staged: Path, chunk_rows: int, features: Sequence[str]) -> tuple[list[str], int]:
    """Copy the input, streamed, to Parquet with one row group per chunk; its columns and rows.

    Memory holds one chunk at a time, whatever the file's size, and each worker later reads its own chunk only.

    Raises:
        BatchError: unreadable, lacking a contract column, or empty.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns, batches = _record_batches(source)
    missing = [f for f in features if f not in columns]
    if missing:
        raise BatchError(f"{source} has no column(s) {missing}; the data contract needs {list(features)}")
    taken = [c for c in columns if c in (ROW, PREDICTION, ERROR) or c.startswith(PROBA_PREFIX)]
    if taken:
        raise BatchError(f"{source}: column(s) {taken} are names of the output's own columns; rename them")
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        writer: pq.ParquetWriter | None = None
        try:
            for batch in _rechunked(batches, chunk_rows):
                if writer is None:
                    writer = pq.ParquetWriter(tmp, batch.schema)
                writer.write_table(batch, row_group_size=chunk_rows)
                rows += batch.num_rows
        except pa.ArrowInvalid as err:
            raise BatchError(f"cannot read {source}: {err}") from None
        finally:
            if writer is not None:
                writer.close()
        if rows == 0:
            raise BatchError(f"{source} has no rows")

    _write_atomically(staged, write)
    return columns, rows


def _rechunked(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """Tables of exactly ``size`` rows (the last one shorter) from batches of any size."""
    import pyarrow as pa

    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        while count >= size:
            table = pa.Table.from_batches(held)
            yield table.slice(0, size)
            rest = table.slice(size)
            held = rest.to_batches()
            count = rest.num_rows
    if count:
        yield pa.Table.from_batches(held)


def prepare_job(
    source: Path,
    output_dir: Path,
    contract: RequestContract,
    model_name: str,
    model: tuple[str, str] | None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> BatchJob:
    """The folder's job: resumed when the folder holds one for this input, else staged and written anew.

    Args:
        model: (version, run_id) to score with, or None to take the one a resumed job pinned.

    Raises:
        BatchError: the input cannot be read, is empty or lacks a contract column; the folder holds the job of
            another input, chunk size or model version; no model was named and there is no job to resume.
    """
    if chunk_rows < 1:
        raise BatchError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if not source.is_file():
        raise BatchError(f"no input file {source}")
    sha = file_sha256(source)
    output_dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(output_dir)
    job_file = output_dir / JOB_FILE
    if job_file.exists():
        job = replace(BatchJob.from_json(job_file.read_text(encoding="utf-8")), output_dir=str(output_dir))
        _same_job(job, sha, chunk_rows, model)
        if not job.staged.exists():
            _stage(source, job.staged, chunk_rows, job.features)
        return job
    if model is None:
        raise BatchError(f"{output_dir} holds no job to resume; name a version or alias to score with")
    if any(p.name.startswith(PART_PREFIX) for p in output_dir.iterdir()):
        raise BatchError(f"{output_dir} holds part files but no {JOB_FILE}: choose an empty folder")
    staged = output_dir / STAGED_FILE
    columns, rows = _stage(source, staged, chunk_rows, contract.features)
    version, run_id = model
    job = BatchJob(
        input_path=str(source),
        input_sha256=sha,
        output_dir=str(output_dir),
        model_name=model_name,
        version=version,
        run_id=run_id,
        features=tuple(contract.features),
        passthrough=tuple(c for c in columns if c not in contract.features),
        rows=rows,
        chunk_rows=chunk_rows,
    )
    _write_atomically(output_dir / JOB_FILE, lambda tmp: tmp.write_text(job.to_json(), encoding="utf-8"))
    return job


def _same_job(job: BatchJob, sha: str, chunk_rows: int, model: tuple[str, str] | None) -> None:
    where = job.output_dir
    if job.input_sha256 != sha:
        raise BatchError(
            f"{where} holds the scoring of another input (sha256 {job.input_sha256[:12]}, {job.input_path}); "
            "choose an empty folder for this file"
        )
    if job.chunk_rows != chunk_rows:
        raise BatchError(f"{where} was cut into chunks of {job.chunk_rows} rows; resume with that chunk size")
    if model is not None and model[0] != job.version:
        raise BatchError(
            f"{where} is being scored by {job.model_name} v{job.version}, not v{model[0]}: its finished chunks would "
            f"mix two models. Resume with that version (`--resume`), or score into an empty folder"
        )


def numeric_matrix(frame: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """The features as a float64 matrix in contract order; a value that is not a number becomes NaN."""
    import pandas as pd

    columns = [pd.to_numeric(frame[f], errors="coerce").to_numpy(dtype="float64", na_value=np.nan) for f in features]
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


def row_problems(contract: RequestContract, frame: pd.DataFrame) -> np.ndarray:
    """Per row: why it breaks the data contract (the first column at fault), or None; contract order.

    The same rules as `RequestContract.problem`, which the API applies to a whole request: values must be
    numbers, finite, present unless the contract allows missing values, and inside their feature's range.
    """

    reasons = np.full(len(frame), None, dtype=object)
    matrix = numeric_matrix(frame, contract.features)
    for j, (name, low, high) in enumerate(zip(contract.features, contract.low, contract.high, strict=True)):
        values = matrix[:, j]
        missing = frame[name].isna().to_numpy()
        with np.errstate(invalid="ignore"):
            checks = (
                (~missing & np.isnan(values), f"{name}: not a number"),
                (np.isinf(values), f"{name}: values must be finite numbers"),
                (missing & (not contract.allow_missing), f"{name}: missing, and the contract allows none"),
                ((values < low) | (values > high), f"{name}: outside [{low:g}, {high:g}] (the data contract)"),
            )
        for mask, why in checks:
            reasons[mask & (reasons == None)] = why  # noqa: E711 - elementwise on an object array
    return reasons


def _footer(job: BatchJob, index: int, rows: int, scored: int) -> bytes:
    start, _ = job.bounds(index)
    return json.dumps(
        {
            "input_sha256": job.input_sha256,
            "model_name": job.model_name,
            "version": job.version,
            "run_id": job.run_id,
            "chunk": index,
            "start": start,
            "rows": rows,
            "scored": scored,
        }
    ).encode()


def finished_chunk(job: BatchJob, index: int) -> ChunkResult | None:
    """The chunk's result when its part file is there and belongs to this job, else None.

    Raises:
        BatchError: a part file under this chunk's name that another job (input or version) wrote.
    """
    import pyarrow.parquet as pq

    part = job.part(index)
    if not part.exists():
        return None
    meta = (pq.read_schema(part).metadata or {}).get(META_KEY)
    info = json.loads(meta) if meta else {}
    if (info.get("input_sha256"), info.get("version"), info.get("chunk")) != (job.input_sha256, job.version, index):
        raise BatchError(f"{part} was written by another job (not v{job.version} over this input); remove it")
    return ChunkResult(index, info["rows"], info["scored"], info["rows"] - info["scored"], skipped=True)


def score_chunk(job: BatchJob, index: int, contract: RequestContract, model: Any) -> ChunkResult:
    """Check, score and write one chunk (unless its part file is already there); the chunk's counts."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from serving.predict import score

    done = finished_chunk(job, index)
    if done is not None:
        return done
    start, stop = job.bounds(index)
    frame = pq.ParquetFile(job.staged).read_row_group(index).to_pandas()
    if len(frame) != stop - start:
        raise BatchError(f"{job.staged}: chunk {index} has {len(frame)} rows, expected {stop - start}")
    reasons = row_problems(contract, frame)
    ok = pd.isna(reasons)
    values = numeric_matrix(frame, job.features)[ok]
    out = pd.DataFrame({ROW: np.arange(start, stop, dtype="int64")})
    for column in job.passthrough:
        out[column] = frame[column].to_numpy()
    classes = [str(c) for c in model.classes_]
    predictions = np.full(len(frame), None, dtype=object)
    probabilities = np.full((len(frame), len(classes)), np.nan)
    if ok.any():
        scored = score(model, values)
        predictions[ok] = scored.labels
        probabilities[ok] = scored.probabilities
    out[PREDICTION] = pd.array(predictions, dtype="string")
    for j, name in enumerate(classes):
        out[f"{PROBA_PREFIX}{name}"] = probabilities[:, j]
    out[ERROR] = pd.array(reasons, dtype="string")
    table = pa.Table.from_pandas(out, preserve_index=False)
    n_ok = int(ok.sum())
    footer = {**(table.schema.metadata or {}), META_KEY: _footer(job, index, len(out), n_ok)}
    table = table.replace_schema_metadata(footer)
    _write_atomically(job.part(index), lambda tmp: pq.write_table(table, tmp))
    return ChunkResult(index, len(out), n_ok, len(out) - n_ok)


def pending_chunks(job: BatchJob, limit: int | None = None) -> list[int]:
    """The chunks with no finished part file, in order; at most ``limit`` of them."""
    todo = [i for i in range(job.chunks) if finished_chunk(job, i) is None]
    return todo if limit is None else todo[:limit]


def finish(job: BatchJob, ran: Sequence[ChunkResult], seconds: float, runner: str) -> BatchSummary | None:
    """The summary, with the manifest written, once every chunk has its part file; None while some are missing.

    The totals are read back from the part files, so a resumed job counts the chunks earlier runs wrote.
    """
    results = [finished_chunk(job, i) for i in range(job.chunks)]
    if any(r is None for r in results):
        return None
    done = [r for r in results if r is not None]
    if sum(r.rows for r in done) != job.rows:
        raise BatchError(f"{job.output_dir}: the part files hold {sum(r.rows for r in done)} rows, not {job.rows}")
    now = {r.index for r in ran if not r.skipped}
    summary = BatchSummary(
        job=job,
        scored=sum(r.scored for r in done),
        rejected=sum(r.rejected for r in done),
        chunks_scored=len(now),
        chunks_skipped=job.chunks - len(now),
        seconds=seconds,
        runner=runner,
    )
    manifest = Path(job.output_dir) / MANIFEST_FILE
    text = json.dumps(summary.to_dict(), indent=2) + "\n"
    _write_atomically(manifest, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return summary


def read_output(output_dir: Path) -> pd.DataFrame:
    """Every part file of a folder as one frame, in row order (temporary files and the staged input skipped)."""
    import pandas as pd

    parts = sorted(output_dir.glob(f"{PART_PREFIX}*.parquet"))
    if not parts:
        raise BatchError(f"{output_dir} holds no part files")
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True).sort_values(ROW, ignore_index=True)
