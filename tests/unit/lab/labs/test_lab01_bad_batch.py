"""The pure parts of the checkers of labs 1, 2, 7 and 8, and `lab show` for their pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from lab.labs import LABS
from lab.labs.lab01_bad_batch import answer_matches, docs_page, parse_result
from lab.labs.lab02_trace import normalise_md5
from lab.labs.lab07_rollback import find_release
from lab.labs.lab08_k8s import autoscaler_range, first_difference, parse_range
from pipelines.audit import AuditEntry

REPO = Path(__file__).resolve().parents[4]


def _result(success: bool, failed: list[tuple[str, str | None]]) -> dict:
    results = [{"success": False, "expectation_config": {"type": t, "kwargs": {"column": c}}} for t, c in failed]
    results.append({"success": True, "expectation_config": {"type": "expect_table_row_count_to_be_between"}})
    return {
        "success": success,
        "results": results,
        "meta": {
            "run_id": {"run_name": "batch", "run_time": "2026-01-01T00:00:00+00:00"},
            "batch_markers": {"pandas_data_fingerprint": "abc"},
        },
    }


def test_parse_result_keeps_only_failed_expectations_with_their_columns(tmp_path: Path) -> None:
    path = tmp_path / "validations" / "iris_contract" / "batch" / "20260101T000000Z" / "pandas-iris.json"
    parsed = parse_result(path, _result(False, [("expect_column_values_to_be_between", "sepal_length")]))
    assert (parsed.run_name, parsed.fingerprint, parsed.success) == ("batch", "abc", False)
    assert parsed.failed_names() == ["expect_column_values_to_be_between(sepal_length)"]
    page = docs_page(tmp_path, parsed)
    assert page == tmp_path / "data_docs/local_site/validations/iris_contract/batch/20260101T000000Z/pandas-iris.html"


def test_answer_matches_a_failed_expectation_with_or_without_prefix() -> None:
    failed = {"expect_column_mean_to_be_between"}
    assert answer_matches(" Expect_Column_Mean_To_Be_Between ", failed)
    assert answer_matches("column_mean_to_be_between", failed)
    assert answer_matches("expect_column_mean_to_be_between(sepal_length)", failed)
    assert not answer_matches("expect_column_values_to_not_be_null", failed)


def test_normalise_md5_accepts_32_hex_digits_only() -> None:
    assert normalise_md5(" 6980C3448B097CBBF594992EB6C82756\n") == "6980c3448b097cbbf594992eb6c82756"
    assert normalise_md5("6980c344") is None
    assert normalise_md5("z" * 32) is None


def _entry(seq: int, action: str, alias: str, src: str | None, dst: str | None) -> AuditEntry:
    return AuditEntry(seq, "2026-01-01T00:00:00+00:00", "ana", action, alias, src, dst, "why")


def test_find_release_pairs_the_last_promotion_with_the_rollback_that_undid_it() -> None:
    entries = [
        _entry(1, "register", "champion", None, "1"),
        _entry(2, "promote", "champion", "1", "2"),
        _entry(3, "rollback", "champion", "2", "1"),
        _entry(4, "promote", "champion", "1", "3"),
    ]
    release, undone = find_release(entries[:3])
    assert release is not None
    assert undone is not None
    assert (release.seq, undone.seq) == (2, 3)
    release, undone = find_release(entries)
    assert release is not None
    assert release.to_version == "3"
    assert undone is None  # the newest release is still live
    assert find_release(entries[:1]) == (None, None)  # registering the first champion is no release


def test_parse_range_reads_two_numbers_in_any_spelling() -> None:
    assert parse_range("2-4") == (2, 4)
    assert parse_range(" 2 .. 4 ") == (2, 4)
    assert parse_range("from 2 to 4") == (2, 4)
    assert parse_range("4") is None
    assert parse_range("1-2-3") is None


def _hpa(name: str, low: int, high: int) -> dict:
    return {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"kind": "Rollout", "name": name}, "minReplicas": low, "maxReplicas": high},
    }


def test_autoscaler_range_and_first_difference_on_plain_objects() -> None:
    svc = {"kind": "Service", "metadata": {"name": "x"}, "spec": {}}
    fresh = [svc, _hpa("mlops-lab-api", 2, 4)]
    assert autoscaler_range(fresh) == (2, 4)
    assert autoscaler_range([svc]) is None
    assert first_difference(list(fresh), fresh) is None
    hpa = "HorizontalPodAutoscaler/mlops-lab-api"
    assert first_difference([svc, _hpa("mlops-lab-api", 2, 5)], fresh) == f"{hpa} differs"
    assert first_difference([svc], fresh) == f"{hpa} is missing from your file"
    extra = {"kind": "ConfigMap", "metadata": {"name": "old"}}
    assert first_difference([*fresh, extra], fresh) == "ConfigMap/old is not in the current render"


@pytest.mark.parametrize("number", [1, 2, 7, 8])
def test_lab_show_prints_the_page(number: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(REPO))
    result = CliRunner().invoke(app, ["lab", "show", str(number)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert LABS[number].title in result.output
    assert f"mlops-lab lab check {number}" in result.output
