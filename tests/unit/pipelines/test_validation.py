"""The expectation suite: clean and shifted data pass, every kind of corruption is blocked, reports are readable.

These run Great Expectations in memory (no store, no server); the first test pays GX's import time once.
"""

from __future__ import annotations

import json
import tempfile

import numpy as np
import pandas as pd
import pytest

from core.params import DatasetConfig, FeatureSpec
from pipelines.batches import CORRUPT_KINDS, VALID_KINDS, BatchKind, generate_batch, write_batch
from pipelines.data import ingest
from pipelines.validation import DataValidationError, ValidationResult, build_suite, validate_file, validate_frame

# The expectation that must catch each corruption (at least; others may fail too).
CAUGHT_BY = {
    BatchKind.NULLS: "expect_column_values_to_not_be_null",
    BatchKind.WRONG_TYPES: "expect_column_values_to_be_in_type_list",
    BatchKind.OUT_OF_RANGE: "expect_column_values_to_be_between",
    BatchKind.UNKNOWN_CLASS: "expect_column_values_to_be_in_set",
    BatchKind.MISSING_COLUMN: "expect_table_columns_to_match_set",
    BatchKind.EXTRA_COLUMN: "expect_table_columns_to_match_set",
    BatchKind.DUPLICATES: "expect_compound_columns_to_be_unique",
    BatchKind.EMPTY: "expect_table_row_count_to_be_between",
}


def test_every_corruption_kind_has_a_catching_expectation():
    assert set(CAUGHT_BY) == CORRUPT_KINDS


@pytest.mark.parametrize("kind", sorted(CORRUPT_KINDS, key=lambda k: k.value))
def test_every_corruption_is_blocked_after_a_csv_round_trip(kind, params, iris_frame, tmp_path):
    batch = generate_batch(kind, iris_frame, params, rows=120, seed=21, with_source=True)
    path = write_batch(batch, tmp_path / f"{kind.value}.csv", kind, params.dataset.decimals)
    result = validate_file(path, params.dataset)
    assert not result.success
    assert CAUGHT_BY[kind] in {f.expectation for f in result.failures}, result.summary()
    with pytest.raises(DataValidationError) as err:
        result.raise_for_failures()
    assert err.value.result is result
    assert "params.yaml" in str(err.value)  # the message says how to fix it


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", sorted(VALID_KINDS, key=lambda k: k.value))
def test_clean_and_shifted_batches_pass(kind, seed, params, iris_frame):
    result = validate_frame(generate_batch(kind, iris_frame, params, seed=seed, with_source=seed == 1), params.dataset)
    assert result.success, result.summary()
    assert result.failures == []
    assert result.statistics["evaluated"] == result.statistics["successful"] > 10
    result.raise_for_failures()  # no exception


def test_raw_iris_file_passes(params, tmp_path):
    path = ingest(params.dataset, params.ingest, tmp_path / "iris.csv")
    result = validate_file(path, params.dataset)
    assert result.success, result.summary()
    assert result.batch == "iris.csv"
    assert result.summary().startswith("PASSED")


def test_summary_names_expectation_column_and_example(params, iris_frame):
    bad = iris_frame.copy()
    bad.loc[[3, 7], "sepal_length"] = [51.0, 48.0]  # millimetres
    bad.loc[5, params.dataset.target] = "hybrid"
    result = validate_frame(bad, params.dataset, batch_name="mixed.csv")
    summary = result.summary()
    assert summary.startswith("FAILED: 'mixed.csv'")
    assert "expect_column_values_to_be_between on column 'sepal_length'" in summary
    assert "51.0" in summary
    assert "48.0" in summary
    assert "expect_column_values_to_be_in_set on column 'species'" in summary
    assert "'hybrid'" in summary
    between = next(f for f in result.failures if f.expectation == "expect_column_values_to_be_between")
    assert between.column == "sepal_length"
    assert between.examples == [51.0, 48.0]
    assert "2 of" in between.detail
    assert "rows 3, 7" in between.detail
    json.dumps(result.to_dict())  # machine-readable too


def test_empty_file_is_a_readable_failure(params, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    result = validate_file(path, params.dataset)
    assert not result.success
    kinds = {f.expectation: f for f in result.failures}
    assert "missing" in kinds["expect_table_columns_to_match_set"].detail
    assert "0 rows" in kinds["expect_table_row_count_to_be_between"].detail
    assert "species" in result.summary()


def test_unparseable_file_is_a_readable_failure(params, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n1,2,3,4\n")
    result = validate_file(path, params.dataset)
    assert not result.success
    assert result.failures[0].expectation == "file_is_a_readable_csv"
    assert "line 3" in result.summary()


def test_missing_column_is_reported_once_not_as_a_cascade(params, iris_frame):
    result = validate_frame(iris_frame.drop(columns="petal_width"), params.dataset)
    assert [f.expectation for f in result.failures] == ["expect_table_columns_to_match_set"]
    assert result.failures[0].examples == ["petal_width"]


def test_text_in_a_numeric_column_is_explained(params, iris_frame):
    bad = iris_frame.copy()
    bad["sepal_width"] = bad["sepal_width"].map(lambda v: f"{v:.1f}".replace(".", ","))
    result = validate_frame(bad, params.dataset)
    first = result.failures[0]
    assert (first.expectation, first.column) == ("expect_column_values_to_be_in_type_list", "sepal_width")
    assert "," in first.examples[0]
    assert all("could not be evaluated" not in f.detail for f in result.failures)


def test_suite_is_derived_from_the_contract(params):
    cfg = params.dataset
    with_group = build_suite(cfg, [*cfg.required_columns, cfg.group_column])
    columns_rule = next(e for e in with_group.expectations if e.expectation_type == "expect_table_columns_to_match_set")
    assert set(columns_rule.column_set) == {*cfg.required_columns, cfg.group_column}
    plain = build_suite(cfg, cfg.required_columns)
    by_type = pd.Series([e.expectation_type for e in plain.expectations]).value_counts()
    assert by_type["expect_column_values_to_be_between"] == len(cfg.features)
    assert by_type["expect_column_mean_to_be_between"] == sum(s.mean is not None for s in cfg.features.values())
    assert by_type["expect_column_values_to_not_be_null"] == len(cfg.features) + 1
    assert by_type["expect_compound_columns_to_be_unique"] == 1


def test_group_column_is_allowed_but_not_required(params, iris_frame):
    with_source = iris_frame.assign(**{params.dataset.group_column: "site-a"})
    assert validate_frame(with_source, params.dataset).success
    assert validate_frame(iris_frame, params.dataset).success


def _sensor_config(**overrides: object) -> DatasetConfig:
    base: dict[str, object] = {
        "name": "sensors",
        "path": "data/sensors.csv",
        "target": "status",
        "classes": ["ok", "fault"],
        "features": {"temp": FeatureSpec(min=-40, max=120, mean=(0, 80)), "rpm": FeatureSpec(min=0, max=9000)},
        "allow_missing": True,
        "row_count": {"min": 5, "max": 100},
    }
    return DatasetConfig.model_validate({**base, **overrides})


def _sensor_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "temp": rng.normal(30, 10, 40).round(1),
            "rpm": rng.normal(3000, 500, 40).round(0),
            "status": ["ok", "fault"] * 20,
        }
    )
    frame.loc[[2, 9], "temp"] = np.nan
    return frame


def test_a_non_iris_contract_validates_from_configuration_alone():
    cfg, frame = _sensor_config(), _sensor_frame()
    result = validate_frame(frame, cfg)
    assert result.success, result.summary()  # NaNs allowed by allow_missing
    bad = frame.copy()
    bad.loc[0, "rpm"] = 20000.0
    bad.loc[1, "status"] = "broken"
    failed = validate_frame(bad, cfg)
    assert {(f.expectation, f.column) for f in failed.failures} == {
        ("expect_column_values_to_be_between", "rpm"),
        ("expect_column_values_to_be_in_set", "status"),
    }
    strict = validate_frame(frame, _sensor_config(allow_missing=False))
    assert {(f.expectation, f.column) for f in strict.failures} == {("expect_column_values_to_not_be_null", "temp")}
    too_many = validate_frame(pd.concat([frame] * 3, ignore_index=True), _sensor_config(unique_rows=False))
    assert [f.expectation for f in too_many.failures] == ["expect_table_row_count_to_be_between"]


def test_data_docs_are_written_and_rebuilt_without_temp_litter(params, iris_frame, tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    docs = tmp_path / "gx"
    first = validate_frame(iris_frame, params.dataset, docs_dir=docs, batch_name="first.csv")
    second = validate_frame(iris_frame.head(5), params.dataset, docs_dir=docs, batch_name="second.csv")
    assert first.docs_path == second.docs_path == docs / "data_docs" / "local_site" / "index.html"
    index = first.docs_path.read_text()
    assert "first.csv" in index
    assert "second.csv" in index
    assert not second.success
    assert f"Data Docs: {second.docs_path}" in second.summary()
    assert list(scratch.iterdir()) == []


def test_result_round_trips_to_json(params, iris_frame):
    result = validate_frame(iris_frame.iloc[0:0], params.dataset)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["success"] is False
    assert data["statistics"]["unsuccessful"] == len(data["failures"]) > 0
    assert isinstance(result, ValidationResult)


def test_a_file_names_its_offending_rows_by_file_line(params, iris_frame, tmp_path):
    """validate names the line an editor shows (1-based, the header is line 1), not a 0-based data index."""
    frame = iris_frame.head(20).copy()
    frame.loc[[2, 7], "sepal_length"] = 55.0  # data rows 2 and 7: file lines 4 and 9
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    assert path.read_text().splitlines()[3].startswith("55.0,")  # line 4 of the file, counted as an editor does
    result = validate_file(path, params.dataset)
    (failure,) = [f for f in result.failures if f.expectation == "expect_column_values_to_be_between"]
    assert "(first at file lines 4, 9; the header is line 1)" in failure.detail
    in_memory = validate_frame(frame, params.dataset)  # a frame read from no file keeps its row index
    (failure,) = [f for f in in_memory.failures if f.expectation == "expect_column_values_to_be_between"]
    assert "(first at rows 2, 7)" in failure.detail
