"""`mlops-lab features ...` through the real CLI, on a real Feast store in a throwaway project."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from cli import features as feature_commands
from cli.app import app
from pipelines.feature_store import FeatureRepo, definition_digest
from pipelines.feature_training import file_sha256, lineage_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROW = r"(point in time \(Feast\)|naive \(latest values\))\s*│\s*([\d.]+)\s*│\s*([\d.]+)"  # a table row


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_history_then_a_training_set_with_its_lineage_record(cli_project, params) -> None:
    project = cli_project(feature_commands)
    out = project / "data" / "features.csv"
    refused = _run("features", "training-set", "-o", str(out))
    assert refused.exit_code == 1
    assert "no feature store" in refused.output
    assert not out.exists()

    made = _run("features", "history", "--specimens", "80", "--seed", "2")
    assert made.exit_code == 0, made.output
    repo = FeatureRepo(project / ".state" / "feature_repo")
    assert repo.online_db.is_file()
    assert repo.registry.is_file()
    assert "8 specimens still open" in made.output

    exported = _run("features", "training-set", "-o", str(out))
    assert exported.exit_code == 0, exported.output
    rows = int(re.search(r"wrote (\d+) rows", exported.output).group(1))
    assert 60 <= rows <= 72  # 72 labelled specimens, less any duplicate rows
    assert len(out.read_text().splitlines()) == rows + 1
    record = json.loads(lineage_path(out).read_text())
    assert record["csv_sha256"] == file_sha256(out)
    assert record["definition_sha256"] == definition_digest(params.dataset)
    assert f"mlops-lab train --data {out}" in exported.output

    again = _run("features", "materialize")
    assert again.exit_code == 0, again.output
    assert "materialized up to" in again.output


def test_materialize_without_a_store_says_what_to_run(cli_project) -> None:
    cli_project(feature_commands)
    result = _run("features", "materialize")
    assert result.exit_code == 1
    assert "run `mlops-lab features history` first" in result.output


def test_leakage_prints_both_joins_offline_and_online(cli_project) -> None:
    cli_project(feature_commands)
    result = _run("features", "leakage", "--specimens", "120", "--seed", "1")
    assert result.exit_code == 0, result.output
    found = {
        m.group(1): (float(m.group(2)), float(m.group(3)))
        for m in re.finditer(
            r"(point in time \(Feast\)|naive \(latest values\))\s*│\s*([\d.]+)\s*│\s*([\d.]+)", result.output
        )
    }
    assert set(found) == {"point in time (Feast)", "naive (latest values)"}
    pit, naive = found["point in time (Feast)"], found["naive (latest values)"]
    assert pit[0] == pit[1]  # its test rows are the served rows
    assert naive[0] >= naive[1]
