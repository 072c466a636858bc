"""DVC stage functions: deterministic metrics files, a model that loads back, untrusted files refused."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from core.params import Params
from pipelines.data import write_csv
from pipelines.dvc_stages import (
    evaluate_stage,
    load_model,
    train_stage,
    write_metrics,
)
from pipelines.fit import split_data
from pipelines.model_files import UntrustedModelError


def _run_both(params: Params, data: Path, out: Path) -> dict[str, float]:
    model = out / "models" / "pipeline.skops"
    train_stage(params, data, model, out / "train.json")
    return evaluate_stage(params, data, model, out / "eval.json", out / "confusion.csv")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, params: Params, iris_frame: pd.DataFrame) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("dvc_stages")
    data = write_csv(iris_frame, root / "iris.csv", params.dataset.decimals)
    first, second = root / "first", root / "second"
    _run_both(params, data, first)
    _run_both(params, data, second)
    return first, second


@pytest.mark.parametrize("name", ["train.json", "eval.json", "confusion.csv"])
def test_outputs_are_byte_identical_across_runs(two_runs: tuple[Path, Path], name: str) -> None:
    first, second = two_runs
    assert (first / name).read_bytes() == (second / name).read_bytes()


def test_metrics_files_are_sorted_rounded_json(two_runs: tuple[Path, Path]) -> None:
    scores = json.loads((two_runs[0] / "eval.json").read_text())
    assert list(scores) == sorted(scores)
    assert 0.8 < scores["test_accuracy"] <= 1.0
    assert all(len(repr(v).split(".")[-1]) <= 6 for v in scores.values())
    train = json.loads((two_runs[0] / "train.json").read_text())
    assert set(train) == {"cv_accuracy_mean", "cv_accuracy_std", "n_train_rows"}


def test_saved_model_loads_and_predicts_the_test_split(
    two_runs: tuple[Path, Path], params: Params, iris_frame: pd.DataFrame
) -> None:
    model = load_model(two_runs[0] / "models" / "pipeline.skops")
    split = split_data(iris_frame, params)
    predictions = model.predict(split.X_test)
    rows = pd.read_csv(two_runs[0] / "confusion.csv")
    assert list(rows.columns) == ["actual", "predicted"]
    assert list(predictions) == rows["predicted"].tolist()
    assert rows["actual"].tolist() == split.y_test.tolist()


def test_write_metrics_rounds_floats_keeps_ints_and_sorts(tmp_path: Path) -> None:
    path = write_metrics({"b": 1 / 3, "a": 2}, tmp_path / "m.json")
    assert path.read_text() == '{\n  "a": 2,\n  "b": 0.333333\n}\n'


def test_model_needing_foreign_types_is_refused(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    source = two_runs[0] / "models" / "pipeline.skops"
    tampered = tmp_path / "tampered.skops"
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(tampered, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "schema.json":
                data = data.replace(b'"pipelines.features"', b'"evil.module"')
            zout.writestr(item, data)
    with pytest.raises(UntrustedModelError, match=r"evil\.module"):
        load_model(tampered)


def test_missing_model_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dvc repro train"):
        load_model(tmp_path / "absent.skops")
