"""Benchmark section "batch-scoring": rows per second of the batch-scoring flow, one process against Dask.

Concept: batch inference at scale (C61), measured. The batch-scoring flow (`flows.batch_scoring_flow`) buys
resumability, lineage and the service's data contract per row, and can spread chunks over Dask workers; this
section shows what that costs and when the workers pay. On a fresh state with one registered champion, a
1,000,000-row clean file (`generate_batch(..., unique_rows=False)`, label dropped, Parquet) is scored three
ways, interleaved round by round:

- plain: the served model loaded once (`serving.model_cache.load_served_model`, loaded before the clock
  starts and timed apart), the Parquet file read and `serving.predict.score` called on all rows at once;
- the flow on threads with one worker: one process, the model loaded once in it;
- the flow on a Dask LocalCluster of two worker processes: each worker imports Prefect and the libraries
  and loads the model itself.

Each flow run is `run_batch_scoring` into its own empty folder, wall clock: hashing and staging the input,
the flow, the part files and the manifest. Its fixed cost is timed apart with a run of a small file, one tiny chunk
per worker, on each runner; so the per-row rate after start-up, and the file size at which Dask would catch
up, follow.

``measure_batch_scoring`` is the ``batch-scoring`` section of ``mlops-lab bench``; ``batch_section`` builds
the table from the timings (pure, unit-tested on made-up figures). Heavy libraries are imported inside.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.harness import BenchEnv, Row, Section, Timing

if TYPE_CHECKING:
    from core.settings import Settings
    from serving.contract import RequestContract

ROWS = 1_000_000
CHUNK_ROWS = 100_000
TINY_CHUNK = 1_000  # the fixed-cost run: one chunk this small per worker, so every worker starts and loads
REPEATS = 2
WORKERS = 2
SUBJECTS = ("plain", "threads", "dask")


@dataclass(frozen=True)
class BatchTimings:
    """Wall-clock samples of each way of scoring, and what the section says about them."""

    rows: int
    chunk_rows: int
    tiny_rows: int
    full: dict[str, Timing]  # SUBJECTS -> the whole file
    tiny: dict[str, Timing]  # "threads", "dask" -> a run of tiny_rows, one chunk per Dask worker
    flow_body: Timing  # the threads runs' flow body (the chunks), from their summaries
    load: Timing  # load_served_model, once, in this process
    model: str  # what scored: the Pipeline or its ONNX model
    cores: int


def rate(rows: int, timing: Timing) -> float:
    """Rows per second at the median."""
    return rows / timing.median if timing.median > 0 else float("inf")


def marginal_rate(rows: int, tiny_rows: int, full: Timing, tiny: Timing) -> float | None:
    """Rows per second beyond the fixed cost of a run: the extra rows over the extra time, at the medians.

    None when the full runs cannot be told from the small ones: a full run no slower than the slowest small one.
    """
    if min(full.samples) <= max(tiny.samples):
        return None
    return (rows - tiny_rows) / (full.median - tiny.median)


def break_even(fixed_one: float, fixed_dask: float, rate_one: float | None, rate_dask: float | None) -> float | None:
    """Rows from which Dask's run is shorter than one process's (None when Dask's marginal rate is not higher)."""
    if rate_one is None or rate_dask is None or rate_dask <= rate_one:
        return None
    return max(fixed_dask - fixed_one, 0.0) / (1 / rate_one - 1 / rate_dask)


def _rows_per_s(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} rows/s"


def batch_section(t: BatchTimings) -> Section:
    """The report's table from the timings (pure: unit-tested on made-up figures)."""
    n, plain, one, dask = t.rows, t.full["plain"], t.full["threads"], t.full["dask"]
    plain_label = f"plain: read Parquet + `score`, 1 process ({_rows_per_s(rate(n, plain))})"
    one_label = f"flow, threads, 1 worker ({_rows_per_s(rate(n, one))})"
    dask_label = f"flow, Dask LocalCluster, {WORKERS} processes ({_rows_per_s(rate(n, dask))})"
    chunks, tiny_chunks = -(-n // t.chunk_rows), -(-t.tiny_rows // TINY_CHUNK)
    tiny = f"{t.tiny_rows:,} rows in {tiny_chunks} chunk{'s' * (tiny_chunks > 1)}"
    rows = [
        Row(f"score {n:,} rows: the flow in one process", plain_label, one_label, plain, one),
        Row(f"score {n:,} rows: the flow on Dask", plain_label, dask_label, plain, dask),
        Row(f"score {n:,} rows: Dask against one process", one_label, dask_label, one, dask),
        Row(f"fixed cost: a run of {tiny}", "flow, threads, 1 worker", f"flow, Dask, {WORKERS} processes",
            t.tiny["threads"], t.tiny["dask"]),
        Row("load the served model once (plain; the flow's own process)", "—", f"`load_served_model` ({t.model})",
            None, t.load),
    ]  # fmt: skip
    fixed_one, fixed_dask = t.tiny["threads"].median, t.tiny["dask"].median
    after_one = marginal_rate(n, t.tiny_rows, one, t.tiny["threads"])
    after_dask = marginal_rate(n, t.tiny_rows, dask, t.tiny["dask"])
    even = break_even(fixed_one, fixed_dask, after_one, after_dask)
    if even is not None:
        catch_up = f"at these rates Dask would finish first from about {even:,.0f} rows."
    elif after_dask is None:
        catch_up = (
            f"on Dask the {n:,} rows took no longer than the small file (the ranges overlap): the start-up is all "
            "this run can see, and no rate after it, nor a size where Dask catches up, can be read off it."
        )
    else:
        catch_up = "Dask's rate after start-up is not higher here: at these rates no file size makes it finish first."
    body = t.flow_body.median
    notes = [
        f"Input: `generate_batch('clean', ..., rows={n:,}, unique_rows=False)`, label dropped, one Parquet file; "
        f"the flow cuts it into {chunks} chunks of {t.chunk_rows:,} rows. Every subject scores with the same "
        f"model ({t.model}) through `serving.predict.score`. Machine: {t.cores} cores.",
        f"Rows/s at the median: plain {_rows_per_s(rate(n, plain))}, flow on threads {_rows_per_s(rate(n, one))}, "
        f"flow on Dask {_rows_per_s(rate(n, dask))}. The flow takes {one.median / plain.median:.2f}× (threads) and "
        f"{dask.median / plain.median:.2f}× (Dask) the time of plain scoring; Dask {dask.median / one.median:.2f}× "
        "that of one process.",
        "A flow run is `run_batch_scoring` into an empty folder, wall clock: it hashes and stages the input "
        "(rewritten as Parquet with one row group per chunk), checks every row against the data contract, writes "
        "one part file per chunk with its lineage, and reports to Prefect; plain does none of that and is the "
        f"floor. Of the threads run's {one.median:.1f} s, the flow's body (the chunks) took {body:.1f} s.",
        f"Fixed cost of a run ({tiny}, one per Dask worker): {fixed_one:.1f} s on threads, {fixed_dask:.1f} s on "
        "Dask, which starts the cluster when the first chunk is submitted (each worker then imports Prefect and "
        "the libraries and loads the model itself) and stops it after the last. Beyond it, threads score "
        f"{_rows_per_s(after_one)} and Dask {_rows_per_s(after_dask)}; {catch_up}",
        f"Where Dask pays: a model that costs more per row than this light {t.model} (a large forest, a "
        f"transformer), more cores than the {t.cores} here, or workers on other machines (`MLOPS_DASK_ADDRESS`): "
        "then the chunks' work dwarfs the start-up and each worker adds its own core. Here the flow's process, its "
        "Prefect server and the workers share the same cores.",
    ]
    return Section(
        title="Batch scoring",
        intro=(
            f"One {n:,}-row file scored by the batch-scoring flow in one process and on a Dask cluster of "
            f"{WORKERS} worker processes, against `predict_proba` on the whole file in one process."
        ),
        rows=rows,
        notes=notes,
    )


def _prepare(env: BenchEnv, root: Path, rows: int) -> tuple[Settings, RequestContract, Path, Path]:
    """A state with one registered champion; the big input file and a one-chunk one beside it."""
    from core.startup import configure_runtime
    from pipelines.batches import generate_batch
    from pipelines.data import ingest
    from pipelines.training_steps import run_training
    from serving.contract import RequestContract

    settings = env.settings.model_copy(
        update={
            "state_dir": root / "state",
            "tracking_uri": None,  # explicit None: a bench never writes to a registry that MLOPS_* points at
            "registry_uri": None,
            "artifact_root": None,
            "prediction_log_url": None,
            "dask_address": None,  # a LocalCluster on this machine, whatever the environment says
        }
    )
    configure_runtime(settings)
    data = ingest(env.params.dataset, env.params.ingest, root / "iris.csv")
    result = run_training(settings, env.params, data)
    if result.status != "registered":
        raise RuntimeError(f"batch-scoring bench: training did not register a model ({result.status})")
    import pandas as pd

    frame = generate_batch("clean", pd.read_csv(data), env.params, rows=rows, seed=7, unique_rows=False)
    frame = frame.drop(columns=[env.params.dataset.target])
    source, tiny = root / "input.parquet", root / "tiny.parquet"
    frame.to_parquet(source, index=False)
    frame.head(TINY_CHUNK * WORKERS).to_parquet(tiny, index=False)
    return settings, RequestContract.from_dataset(env.params.dataset), source, tiny


def measure_batch_scoring(
    env: BenchEnv, rows: int = ROWS, chunk_rows: int = CHUNK_ROWS, repeats: int = REPEATS
) -> Section:
    """Plain scoring, the flow on threads and the flow on Dask, interleaved; then one-chunk runs of each runner."""
    import numpy as np
    import pyarrow.parquet as pq

    from flows.batch_scoring_flow import run_batch_scoring
    from serving.model_cache import load_served_model
    from serving.predict import score

    with tempfile.TemporaryDirectory(prefix="mlops-lab-bench-batch-") as tmp:
        root = Path(tmp)
        env.say(f"[batch-scoring] training one champion and writing {rows:,} rows ...")
        settings, contract, source, tiny_source = _prepare(env, root, rows)
        features = list(contract.features)
        start = time.perf_counter()
        model = load_served_model(settings, "1", features)
        load = Timing((time.perf_counter() - start,))
        runners = {
            "threads": settings.model_copy(update={"batch_runner": "threads", "batch_workers": 1}),
            "dask": settings.model_copy(update={"batch_runner": "dask", "batch_workers": WORKERS}),
        }
        body: list[float] = []  # the threads runs' flow body
        runs, small = itertools.count(), min(TINY_CHUNK * WORKERS, rows)

        def plain() -> float:
            begin = time.perf_counter()
            values = pq.read_table(source, columns=features).to_pandas().to_numpy(dtype="float64")
            scored = score(model, values)
            took = time.perf_counter() - begin
            if len(scored.labels) != rows or np.isnan(values).any():
                raise RuntimeError(f"batch-scoring bench: plain scoring gave {len(scored.labels)} rows, not {rows}")
            return took

        def flow(runner: str, file: Path, size: int, chunk: int, record: bool = True) -> float:
            out = root / f"out-{next(runs)}"  # every run its own empty folder
            begin = time.perf_counter()
            _, summary = run_batch_scoring(runners[runner], contract, file, out, chunk_rows=chunk)
            took = time.perf_counter() - begin
            if summary is None or summary.scored != size:
                raise RuntimeError(f"batch-scoring bench: the {runner} run did not score all {size:,} rows")
            if record and runner == "threads":
                body.append(summary.seconds)
            shutil.rmtree(out)
            return took

        env.say("[batch-scoring] warm-up: Prefect's temporary server, a small run on threads ...")
        flow("threads", tiny_source, small, TINY_CHUNK, record=False)
        calls: dict[str, Callable[[], float]] = {
            "plain": plain,
            "threads": lambda: flow("threads", source, rows, chunk_rows),
            "dask": lambda: flow("dask", source, rows, chunk_rows),
        }
        full: dict[str, list[float]] = {name: [] for name in SUBJECTS}
        for i in range(repeats):
            env.say(f"[batch-scoring] {rows:,} rows: plain, threads, Dask; round {i + 1}/{repeats} ...")
            for name, call in calls.items():
                full[name].append(call())
        env.say(f"[batch-scoring] fixed cost: a run of {small:,} rows on each runner ...")
        tiny: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(repeats):
            for name in runners:
                tiny[name].append(flow(name, tiny_source, small, TINY_CHUNK, record=False))
    timings = BatchTimings(
        rows=rows,
        chunk_rows=chunk_rows,
        tiny_rows=small,
        full={name: Timing(tuple(s)) for name, s in full.items()},
        tiny={name: Timing(tuple(s)) for name, s in tiny.items()},
        flow_body=Timing(tuple(body)),
        load=load,
        model=type(model).__name__,
        cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
    )
    return batch_section(timings)
