"""Lab 1's checker, the pure parts: a validation result parsed to its failed expectations, the answer matched."""

from __future__ import annotations

from pathlib import Path

from lab.labs.lab01_bad_batch import answer_matches, docs_page, parse_result


def _result(success: bool, failed: list[tuple[str, str | None]]) -> dict:
    results = [{"success": False, "expectation_config": {"type": t, "kwargs": {"column": c}}} for t, c in failed]
    results.append({"success": True, "expectation_config": {"type": "expect_table_row_count_to_be_between"}})
    return {
        "success": success,
        "results": results,
        "meta": {
            "run_id": {"run_name": "training:bad.csv", "run_time": "2026-01-01T00:00:00+00:00"},
            "batch_markers": {"pandas_data_fingerprint": "abc"},
        },
    }


def test_parse_result_keeps_only_failed_expectations_with_their_columns(tmp_path: Path) -> None:
    path = tmp_path / "validations" / "iris_contract" / "training:bad.csv" / "20260101T000000Z" / "pandas-iris.json"
    parsed = parse_result(path, _result(False, [("expect_column_values_to_be_between", "sepal_length")]))
    assert (parsed.run_name, parsed.fingerprint, parsed.success) == ("training:bad.csv", "abc", False)
    assert parsed.failed_names() == ["expect_column_values_to_be_between(sepal_length)"]
    page = docs_page(tmp_path, parsed)
    assert (
        page
        == tmp_path
        / "data_docs/local_site/validations/iris_contract/training:bad.csv/20260101T000000Z/pandas-iris.html"
    )


def test_answer_matches_a_failed_expectation_with_or_without_prefix() -> None:
    failed = {"expect_column_mean_to_be_between"}
    assert answer_matches(" Expect_Column_Mean_To_Be_Between ", failed)
    assert answer_matches("column_mean_to_be_between", failed)
    assert answer_matches("expect_column_mean_to_be_between(sepal_length)", failed)
    assert not answer_matches("expect_column_values_to_not_be_null", failed)
