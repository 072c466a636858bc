"""`mlops-lab generate-batch --for-scoring` and `mlops-lab batch-score` through the real CLI: the input it makes,
and a refusal that exits 1 with the reason and writes nothing (the flow itself: tests/integration/flows)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import batch as batch_commands
from cli import data as data_commands
from cli.app import app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def project(cli_project) -> Path:
    """A throwaway project folder (params.yaml copy) with its own state and an empty registry."""
    return cli_project(batch_commands, data_commands)


def test_a_scoring_input_of_any_size_then_a_refusal_with_the_reason_and_nothing_written(project: Path) -> None:
    source = project / "specimens.parquet"
    made = CliRunner().invoke(
        app, ["generate-batch", "clean", "--for-scoring", "--rows", "20000", "--seed", "4", "-o", str(source)]
    )
    assert made.exit_code == 0, made.output
    frame = pd.read_parquet(source)
    assert len(frame) == 20_000
    assert frame.columns[0] == "specimen_id"
    assert "species" not in frame.columns  # no label: it is what the scoring is for
    assert frame.duplicated(subset=list(frame.columns[1:])).any()  # 20,000 rows on a 0.1 grid repeat some

    refused = CliRunner().invoke(app, ["batch-score", str(source), "-o", str(project / "out"), "--runner", "threads"])
    assert refused.exit_code == 1
    assert "refused: iris-classifier has no alias 'champion' in the registry" in refused.output
    assert not (project / "out").exists()


@pytest.fixture
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


def test_a_run_with_a_chunk_budget_says_how_far_it_got_and_the_next_finishes(
    project: Path, make_settings, params, prefect_harness
) -> None:
    from pipelines.data import ingest
    from pipelines.training_steps import run_training

    settings = make_settings(project / ".state")
    assert run_training(settings, params, ingest(params.dataset, params.ingest, project / "iris.csv")).status == (
        "registered"
    )
    source = project / "specimens.parquet"
    made = CliRunner().invoke(app, ["generate-batch", "clean", "--for-scoring", "--rows", "5000", "-o", str(source)])
    assert made.exit_code == 0, made.output
    args = ["batch-score", str(source), "-o", str(project / "out"), "--runner", "threads", "--chunk-rows", "1000"]
    first = CliRunner().invoke(app, [*args, "--max-chunks", "2"])
    assert first.exit_code == 0, first.output
    from pipelines.registry import current_aliases

    champion = current_aliases(settings)["champion"]
    assert f"stopped early: 2 of 5 chunks done (v{champion})" in first.output
    second = CliRunner().invoke(app, [*args, "--resume"])
    assert second.exit_code == 0, second.output
    assert "in 5 chunks (3 now, 2 already done): 5,000 scored, 0 refused" in second.output
