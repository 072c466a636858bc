"""Prefect 3 flow ``batch-scoring``: a large file's chunks scored on Dask (or on threads), resumably.

Concept: batch inference at scale (C61). `run_batch_scoring` is the edge: it names the model (an alias or a
version of the registry, checked and loaded once up front so a refused model stops the job before any
worker starts), prepares the folder's job (`flows.batch_scoring.prepare_job`) and runs the flow on the task
runner the settings choose:

- ``MLOPS_BATCH_RUNNER=dask`` (default): prefect-dask's ``DaskTaskRunner``. Without ``MLOPS_DASK_ADDRESS`` it
  starts a ``distributed.LocalCluster`` of ``MLOPS_BATCH_WORKERS`` processes, one thread each (scoring holds
  the GIL, so threads would not add cores); with it, the same flow submits to that scheduler's workers.
- ``MLOPS_BATCH_RUNNER=threads``: Prefect's thread pool in this one process (the baseline of `make bench`).

Each chunk is one Prefect task (retried once): it loads the version once per worker process, through the
service's own loader, then scores and writes its part file. A Dask worker is another process, so it must
report to the same Prefect API as the flow: with no ``PREFECT_API_URL`` the flow's own temporary server is
started first and its address exported, so the workers the cluster spawns inherit it (otherwise each would
start a temporary server of its own on the same database). Workers of a remote scheduler need
``PREFECT_API_URL`` of a real Prefect server, and the output folder on storage they all see.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, task, unmapped
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait

from core.mlflow_config import mlflow_client
from core.settings import Settings
from core.startup import configure_environment
from flows.batch_scoring import (
    DEFAULT_CHUNK_ROWS,
    BatchError,
    BatchJob,
    BatchSummary,
    ChunkResult,
    finish,
    folder_lock,
    pending_chunks,
    prepare_job,
    score_chunk,
)
from pipelines.flow_runs import tag_this_run
from serving.contract import RequestContract
from serving.model_cache import load_served_model

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

_models: dict[tuple[str, ...], Any] = {}  # (stores, model, version, runtime) -> loaded model, per process
_models_lock = threading.Lock()


def worker_model(settings: Settings, version: str, features: Sequence[str]) -> Any:
    """The version as the service would score it, loaded once per process (every chunk of a worker reuses it)."""
    key = (
        str(settings.mlflow_tracking_uri),
        str(settings.mlflow_registry_uri),
        settings.model_name,
        version,
        settings.serving_runtime,
    )
    with _models_lock:
        if key not in _models:
            configure_environment(settings)  # a Dask worker is a fresh process: MLflow's stores come from here
            _models[key] = load_served_model(settings, version, features)
        return _models[key]


@task(name="score-chunk", cache_policy=NO_CACHE, retries=1, task_run_name="score-chunk-{index}")
def score_chunk_task(job: BatchJob, index: int, contract: RequestContract, settings: Settings) -> ChunkResult:
    """Score one chunk into its part file (a chunk already written is skipped)."""
    return score_chunk(job, index, contract, worker_model(settings, job.version, job.features))


@flow(name="batch-scoring", log_prints=True, flow_run_name="batch-scoring")
def batch_scoring_flow(
    job: BatchJob,
    contract: RequestContract,
    settings: Settings,
    max_chunks: int | None = None,
    runner: str = "threads",
) -> BatchSummary | None:
    """Score the job's unfinished chunks (at most ``max_chunks``); the summary once every chunk is done.

    A chunk that still fails after its retry fails the run, after the other chunks have finished and kept
    their part files: the next run scores only what is missing.
    """
    tag_this_run("mlops-lab", "batch-scoring", f"v{job.version}")
    start = time.perf_counter()
    todo = pending_chunks(job, max_chunks)
    print(f"{job.chunks} chunks of {job.chunk_rows:,} rows; {len(todo)} to score now on {runner}")
    futures = score_chunk_task.map(
        job=unmapped(job), index=todo, contract=unmapped(contract), settings=unmapped(settings)
    )
    wait(futures)
    failed = [i for i, f in zip(todo, futures, strict=True) if f.state.is_failed()]
    ran = [f.result() for f in futures if not f.state.is_failed()]
    if failed:
        raise BatchError(f"chunk(s) {failed} failed after a retry; the other chunks are kept, run again to finish")
    summary = finish(job, ran, time.perf_counter() - start, runner)
    if summary is None:
        left = len(pending_chunks(job))
        print(f"stopped after {len(ran)} chunks: {left} left; run again to finish")
        return None
    print(summary.line())
    create_markdown_artifact(key="batch-scoring", markdown=f"# Batch scoring\n\n{summary.line()}\n")
    return summary


def task_runner(settings: Settings) -> tuple[TaskRunner[Any], str]:
    """The task runner the settings choose, and how it is described in the summary."""
    if settings.batch_runner == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=settings.batch_workers), f"{settings.batch_workers} threads"
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address), f"Dask at {settings.dask_address}"
    cluster: dict[str, Any] = {"n_workers": settings.batch_workers, "threads_per_worker": 1, "processes": True}
    cluster["host"] = "127.0.0.1"  # scheduler, workers and the scheduler's own HTTP routes listen on loopback only
    cluster["dashboard_address"] = None  # no dashboard (its HTTP server still answers /health, on loopback)
    cluster["silence_logs"] = logging.ERROR  # a worker that takes a moment to exit is killed and says so
    runner = DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=cluster)
    return runner, f"Dask LocalCluster of {settings.batch_workers} processes"


@contextmanager
def prefect_api_for_workers() -> Iterator[None]:
    """``PREFECT_API_URL`` exported, for the duration, as the API this process reports to; restored after.

    Worker processes that the cluster spawns inherit the environment, not Prefect's in-process settings.
    With an API configured (the environment, a profile, a test harness) its address is exported. Without
    one, Prefect runs a temporary server for this process: it is started here (the same one the flow then
    uses) and its address exported before any worker exists.
    """
    from prefect.settings import PREFECT_API_URL

    before = os.environ.get("PREFECT_API_URL")
    url = PREFECT_API_URL.value()
    if not url:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        server.start()
        url = server.api_url
    os.environ["PREFECT_API_URL"] = url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = before


def model_to_score(settings: Settings, alias: str | None, version: str | None) -> tuple[str, str]:
    """(version, run_id) of the registry version to score with: ``version``, else the one ``alias`` names.

    Raises:
        BatchError: no such version or alias, or a version marked rejected or rolled back (it never goes out).
    """
    from mlflow.exceptions import MlflowException

    client, name = mlflow_client(settings), settings.model_name
    try:
        if version:
            mv = client.get_model_version(name, version)
        else:
            mv = client.get_model_version_by_alias(name, alias or "")
    except MlflowException:
        what = f"version {version}" if version else f"alias {alias!r}"
        raise BatchError(f"{name} has no {what} in the registry; train and register a model first") from None
    status = (mv.tags or {}).get("status")
    if status in ("rejected", "rolled_back"):
        raise BatchError(f"{name} v{mv.version} is marked {status}: it scores nothing, in batch or online")
    return str(mv.version), str(mv.run_id or "")


def run_batch_scoring(
    settings: Settings,
    contract: RequestContract,
    source: Path,
    output_dir: Path,
    alias: str | None = "champion",
    version: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_chunks: int | None = None,
) -> tuple[BatchJob, BatchSummary | None]:
    """Prepare (or resume) the folder's job and run the flow on the configured runner.

    ``alias`` and ``version`` both None resumes the folder's job with the version it pinned.

    Raises:
        BatchError: the job cannot start (see `prepare_job`, `model_to_score`), or a chunk failed twice.
        UntrustedModelError: the version's file is not the one registered (it never loads anywhere).
    """
    model = model_to_score(settings, alias, version) if (alias or version) else None
    with folder_lock(output_dir):
        job = prepare_job(source, output_dir, contract, settings.model_name, model, chunk_rows)
        worker_model(settings, job.version, job.features)  # a refused or broken model stops here, before any worker
        runner, described = task_runner(settings)
        with prefect_api_for_workers() if settings.batch_runner == "dask" else nullcontext():
            flow = batch_scoring_flow.with_options(task_runner=runner)
            summary = flow(job, contract, settings, max_chunks, described)
    return job, summary
