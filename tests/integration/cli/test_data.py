"""The data commands through the real CLI: ingest, generate-batch, validate (exit codes, JSON), and the demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cli import data as data_commands
from cli.app import app
from core.settings import Settings
from pipelines.data import file_md5

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def project(cli_project) -> Path:
    """A throwaway project folder (params.yaml copy) with its own state and an empty registry."""
    return cli_project(data_commands)


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_ingest_writes_the_raw_file_and_prints_its_md5(project):
    result = _run("ingest")
    assert result.exit_code == 0, result.output
    raw = project / "data" / "raw" / "iris.csv"
    assert raw.exists()
    assert file_md5(raw) in result.output


def test_clean_batch_validates_with_exit_0_and_json(project):
    batch = project / "batches" / "clean.csv"
    generated = _run("generate-batch", "clean", "--output", str(batch), "--seed", "3", "--with-source")
    assert generated.exit_code == 0, generated.output
    assert (project / "data" / "raw" / "iris.csv").exists()  # ingested on demand as the reference
    report = project / "reports" / "clean.json"
    result = _run("validate", str(batch), "--json", str(report))
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    data = json.loads(report.read_text())
    assert data["success"] is True
    assert data["failures"] == []
    assert data["statistics"]["evaluated"] == data["statistics"]["successful"]
    assert (project / ".state" / "gx" / "data_docs" / "local_site" / "index.html").exists()


@pytest.mark.parametrize(
    ("kind", "expectation"),
    [
        ("out-of-range", "expect_column_values_to_be_between"),
        ("empty", "expect_table_row_count_to_be_between"),
    ],
)
def test_corrupt_batch_fails_with_exit_1_and_names_the_expectation(project, kind, expectation):
    batch = project / f"{kind}.csv"
    assert _run("generate-batch", kind, "-o", str(batch), "--rows", "50").exit_code == 0
    report = project / f"{kind}.json"
    result = _run("validate", str(batch), "--json", str(report))
    assert result.exit_code == 1, result.output
    assert "invalid" in result.output
    assert expectation in result.output
    assert "Data Docs" in result.output
    data = json.loads(report.read_text())
    assert data["success"] is False
    assert expectation in {f["expectation"] for f in data["failures"]}


def test_unknown_batch_kind_is_a_usage_error(project):
    result = _run("generate-batch", "bogus", "-o", str(project / "x.csv"))
    assert result.exit_code == 2
    assert not (project / "x.csv").exists()


def test_validate_missing_file_is_a_usage_error(project):
    assert _run("validate", str(project / "nope.csv")).exit_code == 2


def test_demo_blocks_corrupted_batches_and_builds_data_docs(project):
    from core.context import load_context
    from lab.demos.data_validation import run
    from lab.narrate import Narrator

    console = Console(record=True, width=200)
    settings = Settings(project_dir=project, state_dir=project / ".state")
    run(Narrator(console), load_context(settings))
    text = console.export_text()
    assert "passed all" in text
    assert text.count("blocked") >= 3
    assert "expect_column_values_to_be_in_set" in text
    assert "DataValidationError" in text
    assert (settings.gx_dir / "data_docs" / "local_site" / "index.html").exists()
