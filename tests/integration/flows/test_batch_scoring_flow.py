"""The `batch-scoring` flow on real parts: an MLflow registry, Prefect, a Dask LocalCluster, a killed process.

One registered version (module scope); each test scores into its own folder. The Dask test starts a real
LocalCluster of two worker processes that report to the test's Prefect server; the crash test runs the CLI
in its own process group and kills it with SIGKILL once a part file is on disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.mlflow_config import mlflow_client
from core.params import Params
from core.settings import Settings
from flows.batch_scoring import BatchError, read_output
from flows.batch_scoring_flow import run_batch_scoring
from pipelines.batches import generate_batch
from pipelines.data import ingest
from pipelines.training_steps import run_training
from serving.contract import RequestContract
from serving.model_cache import load_served_model
from serving.predict import score

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="module")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture(scope="module")
def registered(
    prefect_harness: None,
    tmp_path_factory: pytest.TempPathFactory,
    make_settings: Callable[..., Settings],
    params: Params,
) -> tuple[Settings, Params, pd.DataFrame]:
    """v1 champion and v2 challenger; a 30,000-row input with an id column (and one row out of contract)."""
    root = tmp_path_factory.mktemp("batch")
    settings = make_settings(root / "state")
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    for _ in range(2):
        assert run_training(settings, params, data).status == "registered"
    frame = generate_batch("clean", pd.read_csv(data), params, rows=30_000, seed=3, unique_rows=False)
    frame = frame.drop(columns=[params.dataset.target]).astype({f: "float64" for f in FEATURES})
    frame.insert(0, "specimen_id", range(len(frame)))
    frame.loc[17_000, "petal_width"] = 99.0
    return settings, params, frame


def _expected(settings: Settings, frame: pd.DataFrame, version: str) -> tuple[list[str], np.ndarray, list[str]]:
    """What the service's own loader and scoring function give for the valid rows, in one call."""
    model = load_served_model(settings, version, FEATURES)
    scored = score(model, frame.drop(index=17_000)[FEATURES].to_numpy())
    assert scored.probabilities is not None
    return scored.labels, scored.probabilities, scored.classes


def _assert_complete(out: pd.DataFrame, frame: pd.DataFrame, expected: tuple[list[str], np.ndarray, list[str]]) -> None:
    labels, probabilities, classes = expected
    assert out["row"].tolist() == list(range(len(frame)))  # every row once, none twice
    assert out["specimen_id"].astype(str).tolist() == frame["specimen_id"].astype(str).tolist()  # a CSV's are text
    assert out["error"].notna().sum() == 1
    assert out.loc[17_000, "error"].startswith("petal_width: outside")
    valid = out.drop(index=17_000)
    assert valid["prediction"].tolist() == labels
    # Same model, same rows; a different chunk size may change a probability's last bit (BLAS blocks), no more.
    assert np.allclose(valid[[f"proba_{c}" for c in classes]].to_numpy(), probabilities, rtol=0, atol=1e-12)


def test_the_flow_on_a_dask_local_cluster_scores_like_the_service_and_records_its_lineage(
    registered: tuple[Settings, Params, pd.DataFrame], tmp_path: Path
) -> None:
    settings, params, frame = registered
    source = tmp_path / "in.parquet"
    frame.to_parquet(source, index=False)
    on_dask = settings.model_copy(update={"batch_runner": "dask", "batch_workers": 2})
    contract = RequestContract.from_dataset(params.dataset)

    job, summary = run_batch_scoring(on_dask, contract, source, tmp_path / "out", chunk_rows=5_000)

    assert summary is not None
    assert summary.runner == "Dask LocalCluster of 2 processes"
    assert (summary.scored, summary.rejected, summary.chunks_scored) == (29_999, 1, 6)
    assert "PREFECT_API_URL" not in os.environ  # exported for the workers only while the flow ran
    version = mlflow_client(settings).get_model_version_by_alias(settings.model_name, "champion")
    assert (job.version, job.run_id) == (str(version.version), version.run_id)
    _assert_complete(read_output(tmp_path / "out"), frame, _expected(settings, frame, job.version))
    import pyarrow.parquet as pq

    footer = pq.read_schema(job.part(3)).metadata[b"mlops_lab.batch"]
    assert job.input_sha256.encode() in footer
    assert f'"version": "{job.version}"'.encode() in footer


def test_a_killed_run_resumes_and_loses_no_row_and_duplicates_none(
    registered: tuple[Settings, Params, pd.DataFrame], tmp_path: Path
) -> None:
    settings, _params, frame = registered
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    out = tmp_path / "out"
    env = {
        **os.environ,
        "MLOPS_STATE_DIR": str(settings.state),
        "MLOPS_PROJECT_DIR": str(REPO),
        "MLOPS_BATCH_RUNNER": "threads",
        "MLOPS_BATCH_WORKERS": "1",
        "COLUMNS": "250",  # one line per message
    }
    env.pop("PREFECT_API_URL", None)
    # A Prefect home and database of its own: the CLI's temporary server never shares a SQLite file with another.
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'prefect' / 'prefect.db'}"
    cli = str(Path(sys.executable).with_name("mlops-lab"))
    command = [cli, "batch-score", str(source), "-o", str(out), "--chunk-rows", "1200"]  # 25 chunks, one at a time
    victim = subprocess.Popen(command, env=env, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob("part-*.parquet")):  # wait for the first finished chunk, then kill mid-run
        assert victim.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no chunk was written within 120 s"
        time.sleep(0.02)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    written = len(list(out.glob("part-*.parquet")))
    assert 1 <= written < 25, f"{written} of 25 chunks were written before the kill"
    # A kill that lands while a chunk is being written leaves its temporary file; make sure there is one.
    (out / ".part-00024.parquet.0123456789abcdef.tmp").write_bytes(b"PAR1 half a part")

    finished = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert f"({25 - written} now, {written} already done)" in finished.stdout
    result = read_output(out)
    champion = mlflow_client(settings).get_model_version_by_alias(settings.model_name, "champion").version
    _assert_complete(result, frame, _expected(settings, frame, str(champion)))
    assert not list(out.glob("*.tmp"))  # a temporary file the killed run left mid-write was removed by the next


def test_a_refused_version_scores_nothing_and_a_moved_alias_does_not_mix_two_models(
    registered: tuple[Settings, Params, pd.DataFrame], tmp_path: Path
) -> None:
    settings, params, frame = registered
    contract = RequestContract.from_dataset(params.dataset)
    source = tmp_path / "in.parquet"
    frame.head(2_000).to_parquet(source, index=False)
    threads = settings.model_copy(update={"batch_runner": "threads"})
    client = mlflow_client(settings)

    run_batch_scoring(threads, contract, source, tmp_path / "out", chunk_rows=500, max_chunks=1)  # champion: v1
    with pytest.raises(BatchError, match="not v2"):  # the folder was started by v1: never finished by another
        run_batch_scoring(threads, contract, source, tmp_path / "out", alias="challenger", chunk_rows=500)
    _, summary = run_batch_scoring(threads, contract, source, tmp_path / "out", alias=None, chunk_rows=500)
    assert summary is not None
    assert (summary.chunks_skipped, summary.job.version) == (1, "1")

    client.set_model_version_tag(settings.model_name, "2", "status", "rejected")
    try:
        with pytest.raises(BatchError, match="marked rejected"):
            run_batch_scoring(threads, contract, source, tmp_path / "fresh", alias="challenger", chunk_rows=500)
    finally:
        client.delete_model_version_tag(settings.model_name, "2", "status")
    assert not (tmp_path / "fresh").exists()


def test_the_same_flow_runs_on_a_separate_dask_scheduler_named_by_its_address(
    registered: tuple[Settings, Params, pd.DataFrame], tmp_path: Path
) -> None:
    """`dask scheduler` and `dask worker` as their own processes on loopback, as on a cluster of their own."""
    from distributed import Client
    from prefect.settings import PREFECT_API_URL

    settings, params, frame = registered
    source = tmp_path / "in.parquet"
    frame.head(6_000).to_parquet(source, index=False)
    dask = str(Path(sys.executable).with_name("dask"))
    scheduler_file = tmp_path / "scheduler.json"
    # The workers report task runs to the flow's Prefect API: on a real cluster, PREFECT_API_URL of a Prefect server.
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "DASK_LOGGING__DISTRIBUTED": "error"}
    common = ["--host", "127.0.0.1", "--scheduler-file", str(scheduler_file), "--no-dashboard"]
    started = [subprocess.Popen([dask, "scheduler", "--port", "0", *common], env=env, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():  # the scheduler writes its address once it listens
            assert started[0].poll() is None, "the Dask scheduler exited"
            assert time.monotonic() < deadline, "the Dask scheduler wrote no address within 60 s"
            time.sleep(0.05)
        worker = [dask, "worker", "--nworkers", "1", "--nthreads", "1", *common]
        started.append(subprocess.Popen(worker, env=env, cwd=REPO, stderr=subprocess.DEVNULL))
        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            address = client.scheduler.address
            remote = settings.model_copy(update={"batch_runner": "dask", "dask_address": address})
            contract = RequestContract.from_dataset(params.dataset)
            job, summary = run_batch_scoring(remote, contract, source, tmp_path / "out", chunk_rows=2_000)

            assert summary is not None
            assert summary.runner == f"Dask at {address}"
            assert summary.chunks_scored == 3
            # The chunks ran in the worker process: it holds the model it loaded for them.
            held = client.run(lambda: len(__import__("flows.batch_scoring_flow").batch_scoring_flow._models))
            assert list(held.values()) == [1]
        out = read_output(tmp_path / "out")
        assert out["row"].tolist() == list(range(6_000))
        expected = score(load_served_model(settings, job.version, FEATURES), frame.head(6_000)[FEATURES].to_numpy())
        assert out["prediction"].tolist() == expected.labels
    finally:
        for process in reversed(started):
            process.terminate()
            process.wait(timeout=30)
