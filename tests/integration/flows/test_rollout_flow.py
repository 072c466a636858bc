"""The Prefect `rollout` flow on real parts: Prefect's test harness, an MLflow registry, the prediction log.

Traffic is planted in the prediction log between flow runs (the API writes the same records), so each
analysis sees exactly what the test intends. Every flow run starts from what the state store says:
walking the steps across several flow runs is the restart-safety check.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner

from core.params import Params
from core.settings import Settings
from pipelines.data import ingest
from pipelines.registry import current_aliases, list_versions
from pipelines.training_steps import run_training
from serving.prediction_log import PredictionLog, PredictionRecord
from serving.rollout_controller import begin_rollout
from serving.state_store import StateStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
_ids = itertools.count()
World = tuple[Settings, Params, StateStore, PredictionLog]


@pytest.fixture(scope="module")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def world(
    prefect_harness: None,
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    params: Params,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    """v1 champion + v2 challenger, a canary started at the first step; the CLI's environment points here."""
    settings = make_settings(tmp_path / "state")
    monkeypatch.setenv("MLOPS_STATE_DIR", str(settings.state))
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(REPO))
    data = ingest(params.dataset, params.ingest, tmp_path / "iris.csv")
    for _ in range(2):
        assert run_training(settings, params, data).status == "registered"
    store = StateStore(settings.prediction_log_uri, params.routing)
    begin_rollout(settings, params, store)
    log = PredictionLog(settings.prediction_log_uri).start()
    yield settings, params, store, log
    log.close()
    store.close()


def plant(log: PredictionLog, arm: str, version: str, n: int, *, errors: int = 0) -> None:
    """n requests on one arm, each labelled correctly; the first `errors` of them failed (no prediction)."""
    rids = [f"flow-r{next(_ids)}" for _ in range(n)]
    for i, rid in enumerate(rids):
        failed = i < errors
        log.record(
            PredictionRecord(
                request_id=rid,
                model_name="iris-classifier",
                model_version=version,
                features={"sepal_length": 5.0},
                prediction=None if failed else "setosa",
                arm=arm,
                strategy="canary",
                latency_ms=2.0,
                status="error" if failed else "ok",
            )
        )
    assert log.flush()
    for rid in rids[errors:]:
        log.record_feedback(rid, "setosa")


def decisions(flow_run_ids: list[UUID]) -> list[str]:
    """The `rollout-decision` markdown of these flow runs, oldest first, read back from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["rollout-decision"]), flow_run_id=ArtifactFilterFlowRunId(any_=flow_run_ids)
            ),
            sort=ArtifactSort.CREATED_DESC,
        )
    return [str(a.data) for a in reversed(artifacts)]


def run_flow(settings: Settings, **parameters: Any) -> tuple[str, UUID]:
    from flows.rollout_flow import rollout_flow

    state = rollout_flow(settings, return_state=True, **parameters)
    assert state.is_completed(), state
    assert state.state_details.flow_run_id is not None
    return state.result(), state.state_details.flow_run_id


def test_flow_walks_every_step_across_restarts_and_promotes(world: World) -> None:
    settings, params, store, log = world
    n, steps = params.rollout.min_requests, params.rollout.steps
    assert params.rollout.min_feedback <= n  # every planted request is labelled
    plant(log, "champion", "1", n)
    plant(log, "challenger", "2", n)

    # One run, three analyses: the first passes and steps up; the next two see no traffic in the new step.
    status, first_run = run_flow(settings, interval_s=0, max_ticks=3)
    assert status == "running"
    assert store.routing().canary_weight == pytest.approx(steps[1] / 100)
    runs = [first_run]
    for _ in steps[2:]:  # a fresh flow run per step: it continues where the state store says
        plant(log, "champion", "1", n)  # both arms in every step's window below 100 %
        plant(log, "challenger", "2", n)
        status, run_id = run_flow(settings, interval_s=0, max_ticks=1)
        runs.append(run_id)
        assert status == "running"
    plant(log, "challenger", "2", n)  # at 100 % only the challenger serves; the 50 % champion is its baseline
    status, run_id = run_flow(settings, interval_s=0, max_ticks=0)  # until finished
    runs.append(run_id)

    assert status == "promoted"
    assert current_aliases(settings)["champion"] == "2"
    assert store.routing().canary_weight == 0.0
    published = decisions(runs)
    assert len(published) == 3 + len(steps[2:]) + 1  # one artifact per analysis
    assert "| 2 | 25 % | set_weight |" in published[0]
    assert "## Analysis: pass" in published[0]
    assert "| online_accuracy | pass |" in published[0]
    assert "## Analysis: inconclusive" in published[1]  # the loop re-analysed instead of reusing a result
    assert "Rollout of version 2: promoted" in published[-1]
    assert "all steps passed" in published[-1]


def test_cli_run_prefect_aborts_an_erroring_challenger(world: World) -> None:
    from cli.app import app

    settings, params, store, log = world
    n = params.rollout.min_requests
    plant(log, "champion", "1", n)
    plant(log, "challenger", "2", n, errors=n // 10)  # 10 % errors, far above max_error_rate

    result = CliRunner().invoke(app, ["rollout", "run", "--prefect", "--interval", "0"])
    assert result.exit_code == 0, result.output
    assert "rollout flow finished: aborted" in result.output
    assert store.routing().canary_weight == 0.0
    assert current_aliases(settings)["champion"] == "1"
    assert {v.version: v.status for v in list_versions(settings)}["2"] == "rejected"

    status, run_id = run_flow(settings, interval_s=0, max_ticks=0)  # a restarted controller does not revive it
    assert status == "aborted"
    assert "No analysis: no rollout in progress." in decisions([run_id])[0]
