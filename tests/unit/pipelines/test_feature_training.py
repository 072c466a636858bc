"""Feature-store lineage on a training file: claimed only while the file is the one exported."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.feature_training import feature_lineage_tags, file_sha256, lineage_path


def _exported(tmp_path: Path) -> Path:
    csv = tmp_path / "train.csv"
    csv.write_text("sepal_length,species\n5.1,setosa\n")
    record = {
        "csv_sha256": file_sha256(csv),
        "feature_view": "specimen_measurements",
        "definition_sha256": "d" * 64,
        "features": ["sepal_length"],
        "join": "point-in-time",
        "measurements_sha256": "m" * 64,
        "labels_sha256": "l" * 64,
        "as_of_first": "2026-01-01",
        "as_of_last": "2026-01-31",
    }
    lineage_path(csv).write_text(json.dumps(record))
    return csv


def test_a_file_without_a_record_has_no_feature_store_tags(tmp_path: Path) -> None:
    csv = tmp_path / "iris.csv"
    csv.write_text("a\n1\n")
    assert feature_lineage_tags(csv) == {}


def test_an_exported_file_names_its_feature_view_definition_and_snapshot(tmp_path: Path) -> None:
    tags = feature_lineage_tags(_exported(tmp_path))
    assert tags["feature_store.lineage"] == "exported"
    assert tags["feature_store.feature_view"] == "specimen_measurements"
    assert tags["feature_store.definition_sha256"] == "d" * 64
    assert tags["feature_store.measurements_sha256"] == "m" * 64
    assert tags["feature_store.labels_sha256"] == "l" * 64
    assert tags["feature_store.as_of"] == "2026-01-01 .. 2026-01-31"


def test_an_edited_file_loses_the_claim(tmp_path: Path) -> None:
    csv = _exported(tmp_path)
    csv.write_text(csv.read_text() + "5.2,setosa\n")
    tags = feature_lineage_tags(csv)
    assert tags == {"feature_store.lineage": "train.csv changed after its export: not claimed"}


def test_an_unreadable_record_is_said_not_claimed(tmp_path: Path) -> None:
    csv = _exported(tmp_path)
    lineage_path(csv).write_text("{not json")
    assert feature_lineage_tags(csv)["feature_store.lineage"].endswith("not claimed")
    assert "feature_store.definition_sha256" not in feature_lineage_tags(csv)
