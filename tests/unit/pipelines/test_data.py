"""The data contract: deterministic ingest, content hashes, the raw frame."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from core.params import Params
from pipelines.data import build_raw_frame, file_md5, ingest, read_csv, split_features_target

REPO = Path(__file__).resolve().parents[3]


def test_ingest_is_byte_identical_across_runs(tmp_path: Path, params: Params) -> None:
    first = ingest(params.dataset, params.ingest, tmp_path / "a" / "iris.csv")
    second = ingest(params.dataset, params.ingest, tmp_path / "b" / "iris.csv")
    assert first.read_bytes() == second.read_bytes()
    assert file_md5(first) == file_md5(second)


def test_ingest_writes_the_contract_columns_and_unique_rows(tmp_path: Path, params: Params) -> None:
    frame = read_csv(ingest(params.dataset, params.ingest, tmp_path / "iris.csv"))
    assert list(frame.columns) == ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    assert set(frame["species"]) == {"setosa", "versicolor", "virginica"}
    assert not frame.duplicated().any()
    assert len(frame) == 149  # sklearn's iris has exactly one duplicated row, dropped by the contract


def test_ingested_md5_matches_dvc_lock(tmp_path: Path, params: Params) -> None:
    lock = REPO / "dvc.lock"
    if not lock.exists():
        pytest.fail("dvc.lock is missing: run `dvc repro` and commit it")
    outs = yaml.safe_load(lock.read_text())["stages"]["ingest"]["outs"]
    recorded = next(o["md5"] for o in outs if o["path"] == params.dataset.path)
    assert file_md5(ingest(params.dataset, params.ingest, tmp_path / "iris.csv")) == recorded


def test_file_md5_is_the_plain_md5_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    content = b"a,b\r\n1,2\r\n"  # DVC 3 hashes raw bytes: no line-ending normalisation
    path.write_bytes(content)
    assert file_md5(path) == hashlib.md5(content).hexdigest()


def test_empty_file_reads_as_an_empty_frame(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert read_csv(path).empty


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="data file not found"):
        read_csv(tmp_path / "nope.csv")


def test_split_features_target_keeps_contract_order(iris_frame, params: Params) -> None:
    X, y = split_features_target(iris_frame[list(reversed(iris_frame.columns))], params.dataset)
    assert list(X.columns) == params.dataset.feature_names
    assert y.name == "species"


def test_raw_frame_rounds_to_the_declared_precision(params: Params) -> None:
    frame = build_raw_frame(params.dataset, params.ingest)
    assert (frame[params.dataset.feature_names] * 10).round(6).mod(1).eq(0).all().all()
