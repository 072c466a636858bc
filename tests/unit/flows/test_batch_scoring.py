"""Batch scoring's chunks, part files and job folder (flows/batch_scoring.py), on a real fitted model.

No Prefect and no registry here: the chunk functions take the model as an argument, so these tests use a
scikit-learn Pipeline fitted on iris. The flow on Dask, the registry and a killed process are in
tests/integration/flows/test_batch_scoring_flow.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.params import Params
from flows.batch_scoring import (
    JOB_FILE,
    MANIFEST_FILE,
    BatchError,
    BatchJob,
    finish,
    finished_chunk,
    folder_lock,
    pending_chunks,
    prepare_job,
    read_output,
    row_problems,
    score_chunk,
)
from pipelines.batches import generate_batch
from serving.contract import RequestContract
from serving.predict import score

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="module")
def contract(params: Params) -> RequestContract:
    return RequestContract.from_dataset(params.dataset)


@pytest.fixture(scope="module")
def model(iris_frame: pd.DataFrame, params: Params) -> object:
    fitted = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    return fitted.fit(iris_frame[FEATURES].to_numpy(), iris_frame[params.dataset.target])


@pytest.fixture(scope="module")
def inputs(iris_frame: pd.DataFrame, params: Params) -> pd.DataFrame:
    """2,500 rows to score: an id, a site, the features; a few rows broken in each way the contract refuses."""
    frame = generate_batch("clean", iris_frame, params, rows=2_500, seed=7, with_source=True, unique_rows=False)
    frame = frame.drop(columns=[params.dataset.target])
    frame.insert(0, "specimen_id", [f"s{i:05d}" for i in range(len(frame))])
    frame = frame.astype({f: "float64" for f in FEATURES})
    frame.loc[10, "petal_length"] = 42.0  # out of range
    frame.loc[11, "sepal_width"] = np.nan  # missing (the contract allows none)
    frame.loc[1_234, "sepal_length"] = np.inf
    return frame


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def _run(job: BatchJob, contract: RequestContract, model: object, limit: int | None = None) -> None:
    for index in pending_chunks(job, limit):
        score_chunk(job, index, contract, model)


def test_every_row_is_scored_once_and_each_refused_row_says_why(
    tmp_path: Path, inputs: pd.DataFrame, contract: RequestContract, model: object
) -> None:
    source = _write(inputs, tmp_path / "in.parquet")
    job = prepare_job(source, tmp_path / "out", contract, "iris", ("3", "run-3"), chunk_rows=1_000)
    assert (job.chunks, job.passthrough) == (3, ("specimen_id", "source"))
    _run(job, contract, model)
    out = read_output(tmp_path / "out")

    assert out["row"].tolist() == list(range(len(inputs)))
    assert out["specimen_id"].tolist() == inputs["specimen_id"].tolist()
    refused = out["error"].notna().to_numpy()
    assert out.index[refused].tolist() == [10, 11, 1_234]
    assert out.loc[10, "error"].startswith("petal_length: outside")
    assert "missing" in out.loc[11, "error"]
    assert "finite" in out.loc[1_234, "error"]
    assert out.loc[refused, "prediction"].isna().all()
    assert out.loc[refused, "proba_setosa"].isna().all()

    expected = score(model, inputs.loc[~refused, FEATURES].to_numpy())  # the service's own scoring function
    assert out.loc[~refused, "prediction"].tolist() == expected.labels
    probabilities = out.loc[~refused, [f"proba_{c}" for c in expected.classes]].to_numpy()
    assert np.array_equal(probabilities, expected.probabilities)


def test_the_contract_check_per_row_refuses_exactly_what_the_api_refuses(contract: RequestContract) -> None:
    rng = np.random.default_rng(5)
    values = rng.uniform(-1.0, 10.0, size=(3_000, len(FEATURES)))
    special = rng.random(values.shape)
    values[special < 0.02] = np.nan
    values[(special >= 0.02) & (special < 0.03)] = np.inf
    values[(special >= 0.03) & (special < 0.04)] = -np.inf
    reasons = row_problems(contract, pd.DataFrame(values, columns=list(contract.features)))
    api_refuses = [contract.problem(row[None, :]) is not None for row in values]
    assert [r is not None for r in reasons] == api_refuses
    assert 0 < sum(api_refuses) < len(values)  # both kinds of row were drawn


def test_text_in_a_number_column_is_refused_on_its_row_only(
    tmp_path: Path, inputs: pd.DataFrame, contract: RequestContract, model: object
) -> None:
    frame = inputs.head(50).astype({"sepal_width": object})
    frame.loc[3, "sepal_width"] = "three"
    job = prepare_job(_write(frame, tmp_path / "in.csv"), tmp_path / "out", contract, "iris", ("1", "r"), 20)
    _run(job, contract, model)
    out = read_output(tmp_path / "out")
    assert out["error"].notna().tolist() == [i in (3, 10, 11) for i in range(50)]
    assert out.loc[3, "error"] == "sepal_width: not a number"


def test_a_run_cut_short_resumes_without_scoring_a_finished_chunk_again(
    tmp_path: Path, inputs: pd.DataFrame, contract: RequestContract, model: object
) -> None:
    source = _write(inputs, tmp_path / "in.parquet")
    job = prepare_job(source, tmp_path / "out", contract, "iris", ("3", "r"), chunk_rows=500)
    _run(job, contract, model, limit=2)
    assert finish(job, [], 1.0, "test") is None  # not every chunk is there yet: no manifest
    assert not (tmp_path / "out" / MANIFEST_FILE).exists()
    first = {i: os.stat(job.part(i)).st_mtime_ns for i in (0, 1)}

    again = prepare_job(source, tmp_path / "out", contract, "iris", None, chunk_rows=500)  # resume: the pinned job
    assert again == job
    assert pending_chunks(again) == [2, 3, 4]
    ran = [score_chunk(again, i, contract, model) for i in range(again.chunks)]
    assert [r.skipped for r in ran] == [True, True, False, False, False]
    assert {i: os.stat(job.part(i)).st_mtime_ns for i in (0, 1)} == first
    summary = finish(again, ran, 2.0, "test")
    assert summary is not None
    assert (summary.scored, summary.rejected, summary.chunks_scored, summary.chunks_skipped) == (2_497, 3, 3, 2)
    manifest = json.loads((tmp_path / "out" / MANIFEST_FILE).read_text())
    assert manifest["job"]["input_sha256"] == job.input_sha256
    assert manifest["job"]["version"] == "3"
    assert read_output(tmp_path / "out")["row"].tolist() == list(range(len(inputs)))


def test_a_part_file_half_written_by_a_crash_is_never_read_and_the_chunk_is_scored_again(
    tmp_path: Path, inputs: pd.DataFrame, contract: RequestContract, model: object
) -> None:
    source = _write(inputs, tmp_path / "in.parquet")
    job = prepare_job(source, tmp_path / "out", contract, "iris", ("3", "r"), chunk_rows=1_000)
    _run(job, contract, model, limit=1)
    # What a process killed mid-write leaves: a temporary file, never the part's own name.
    leftover = tmp_path / "out" / f".{job.part(1).name}.deadbeef.tmp"
    leftover.write_bytes(b"PAR1 half a file")
    assert pending_chunks(job) == [1, 2]
    again = prepare_job(source, tmp_path / "out", contract, "iris", None, chunk_rows=1_000)  # the next run starts
    assert not leftover.exists()  # the dead run's temporary file is gone, nothing else
    assert pending_chunks(again) == [1, 2]
    _run(again, contract, model)
    out = read_output(tmp_path / "out")
    assert out["row"].is_unique
    assert len(out) == len(inputs)
    assert finish(job, [], 1.0, "test") is not None


def test_a_folder_never_mixes_two_inputs_two_models_or_two_chunk_sizes(
    tmp_path: Path, inputs: pd.DataFrame, contract: RequestContract, model: object
) -> None:
    source = _write(inputs, tmp_path / "in.parquet")
    out = tmp_path / "out"
    job = prepare_job(source, out, contract, "iris", ("3", "r"), chunk_rows=1_000)
    _run(job, contract, model, limit=1)
    with pytest.raises(BatchError, match="not v4"):
        prepare_job(source, out, contract, "iris", ("4", "r"), chunk_rows=1_000)
    with pytest.raises(BatchError, match="chunks of 1000 rows"):
        prepare_job(source, out, contract, "iris", ("3", "r"), chunk_rows=500)
    other = _write(inputs.head(100), tmp_path / "other.parquet")
    with pytest.raises(BatchError, match="another input"):
        prepare_job(other, out, contract, "iris", ("3", "r"), chunk_rows=1_000)

    # A part file of another job copied in under a chunk's name is refused, not counted.
    foreign_job = prepare_job(other, tmp_path / "foreign", contract, "iris", ("9", "r"), chunk_rows=1_000)
    score_chunk(foreign_job, 0, contract, model)
    job.part(1).write_bytes(foreign_job.part(0).read_bytes())
    with pytest.raises(BatchError, match="another job"):
        finished_chunk(job, 1)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("in.parquet", pd.DataFrame({"sepal_length": [5.0]}), r"no column\(s\) \['sepal_width'"),
        ("in.parquet", pd.DataFrame({f: pd.Series([], dtype="float64") for f in FEATURES}), "has no rows"),
        ("in.parquet", pd.DataFrame({**{f: [1.0] for f in FEATURES}, "prediction": ["a"]}), "output's own columns"),
        ("in.json", None, r"a \.csv or \.parquet file"),
        ("in.csv", None, "cannot read"),
    ],
)
def test_an_input_that_cannot_be_scored_is_refused_before_anything_is_written(
    tmp_path: Path, contract: RequestContract, name: str, content: pd.DataFrame | None, message: str
) -> None:
    source = tmp_path / name
    if content is None:
        source.write_bytes(b"" if name.endswith(".csv") else b"{}")
    else:
        _write(content, source)
    with pytest.raises(BatchError, match=message):
        prepare_job(source, tmp_path / "out", contract, "iris", ("1", "r"))
    assert not (tmp_path / "out" / JOB_FILE).exists()


def test_a_folder_with_parts_but_no_job_file_is_not_taken_over(tmp_path: Path, contract: RequestContract) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "part-00000.parquet").write_bytes(b"someone else's")
    source = _write(pd.DataFrame({f: [1.0] for f in FEATURES}), tmp_path / "in.parquet")
    with pytest.raises(BatchError, match=r"no _job\.json"):
        prepare_job(source, tmp_path / "out", contract, "iris", ("1", "r"))
    with pytest.raises(BatchError, match="no job to resume"):
        prepare_job(source, tmp_path / "empty", contract, "iris", None)


def test_the_input_is_restaged_with_one_row_group_per_chunk_whatever_its_own_row_groups(
    tmp_path: Path, inputs: pd.DataFrame, contract: RequestContract
) -> None:
    import pyarrow.parquet as pq

    source = tmp_path / "in.parquet"
    inputs.to_parquet(source, index=False, row_group_size=333)  # 8 row groups of its own, none a chunk
    job = prepare_job(source, tmp_path / "out", contract, "iris", ("1", "r"), chunk_rows=1_000)
    staged = pq.ParquetFile(job.staged)
    assert [staged.metadata.row_group(i).num_rows for i in range(staged.num_row_groups)] == [1_000, 1_000, 500]
    assert staged.read().to_pandas().equals(inputs)


def test_a_bad_value_deep_in_a_large_csv_refuses_its_row_not_the_file(
    tmp_path: Path, inputs: pd.DataFrame, contract: RequestContract, model: object
) -> None:
    frame = pd.concat([inputs] * 40, ignore_index=True)  # 100,000 rows: the CSV is read in several blocks
    frame = frame.astype({"petal_width": object, "specimen_id": object})
    frame.loc[97_001, "petal_width"] = "three"  # (an empty field or n/a would be a missing value)
    frame.loc[98_000, "specimen_id"] = 12345  # a number among text ids, far from the first block
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    job = prepare_job(source, tmp_path / "out", contract, "iris", ("1", "r"), chunk_rows=25_000)
    _run(job, contract, model)
    out = read_output(tmp_path / "out")
    assert len(out) == 100_000
    assert out.loc[97_001, "error"] == "petal_width: not a number"
    assert out.loc[98_000, "specimen_id"] == "12345"
    assert out["error"].notna().sum() == 3 * 40 + 1  # the three broken rows of each copy, and the new one


def test_a_folder_held_by_one_run_refuses_a_second_and_a_killed_holder_releases_it(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    out = tmp_path / "out"
    with folder_lock(out), pytest.raises(BatchError, match="another batch-score run holds"), folder_lock(out):
        pass
    with folder_lock(out):  # released on exit
        pass

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from flows.batch_scoring import folder_lock\n"
         f"with folder_lock(Path({str(out)!r})):\n    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(BatchError, match="another batch-score run holds"), folder_lock(out):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with folder_lock(out):  # the kernel released the killed holder's lock
        pass
