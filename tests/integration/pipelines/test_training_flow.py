"""The Prefect `training` flow under Prefect's test harness (a real, temporary Prefect API)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.context import LabContext
from core.params import Params
from core.settings import Settings
from pipelines.data import ingest, read_csv

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params):
    """Settings on a fresh state folder, passed to the flow as arguments, under Prefect's test harness."""
    from prefect.testing.utilities import prefect_test_harness

    settings: Settings = make_settings(tmp_path_factory.mktemp("flow-state"))
    with prefect_test_harness(server_startup_timeout=90):
        yield LabContext(settings, params)


def test_training_flow_registers_a_champion_and_publishes_the_decision(prefect_env, params: Params, tmp_path) -> None:
    from prefect.artifacts import Artifact
    from prefect.client.orchestration import get_client

    from core.mlflow_config import mlflow_client
    from pipelines.registry import current_aliases
    from pipelines.training_flow import training_flow

    data = ingest(params.dataset, params.ingest, tmp_path / "iris.csv")
    state = training_flow(prefect_env.settings, prefect_env.params, data_path=str(data), return_state=True)
    assert state.is_completed()
    outcome = state.result()
    assert outcome.status == "registered"
    assert current_aliases(prefect_env.settings) == {"champion": outcome.version}
    artifact = Artifact.get("training-decision")
    assert artifact is not None
    assert f"version **{outcome.version}**" in str(artifact.data)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(state.state_details.flow_run_id)
    assert flow_run.name == f"train-{data.stem}"  # not Prefect's random adjective-animal
    assert mlflow_client(prefect_env.settings).get_run(outcome.run_id).info.run_name == f"train-v{outcome.version}"


def test_training_flow_fails_on_invalid_data_before_training(prefect_env, params: Params, tmp_path) -> None:
    from pipelines.batches import generate_batch, write_batch
    from pipelines.registry import list_versions
    from pipelines.training_flow import training_flow
    from pipelines.validation import DataValidationError

    before = len(list_versions(prefect_env.settings))
    reference = read_csv(ingest(params.dataset, params.ingest, tmp_path / "iris.csv"))
    bad = write_batch(generate_batch("unknown-class", reference, params, seed=1), tmp_path / "bad.csv", "unknown-class")
    state = training_flow(prefect_env.settings, prefect_env.params, data_path=str(bad), return_state=True)
    assert state.is_failed()
    with pytest.raises(DataValidationError, match="species"):
        state.result()
    assert len(list_versions(prefect_env.settings)) == before


def test_validation_is_cached_for_the_same_bytes_and_contract(prefect_env, params: Params, tmp_path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from pipelines.training_flow import training_flow

    data = ingest(params.dataset, params.ingest, tmp_path / "iris.csv")
    states = [
        training_flow(prefect_env.settings, prefect_env.params, data_path=str(data), return_state=True)
        for _ in range(2)
    ]
    names = []
    with get_client(sync_client=True) as client:
        for state in states:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
            )
            names.append({t.name.split("-")[0]: t.state_name for t in runs})
    assert names[1]["validate"] == "Cached"
    assert names[1]["train"] == "Completed"  # only validation is cached; training always runs


def test_the_flow_run_stores_its_settings_without_secrets(prefect_env, params: Params, tmp_path) -> None:
    """Prefect keeps a flow run's parameters; the settings passed in are stored with no password or token."""
    import json

    from prefect.client.orchestration import get_client

    from pipelines.training_flow import training_flow

    secret, token = "fake-pw-that-must-not-leak", "fake-token-that-must-not-leak-0123"
    settings = prefect_env.settings.model_copy(
        update={"admin_token": token, "prediction_log_url": f"postgresql+psycopg://u:{secret}@127.0.0.1:1/x"}
    )  # neither is used by training: the run succeeds with them
    data = ingest(params.dataset, params.ingest, tmp_path / "iris.csv")
    state = training_flow(settings, prefect_env.params, data_path=str(data), return_state=True)
    assert state.is_completed()
    with get_client(sync_client=True) as client:
        stored = client.read_flow_run(state.state_details.flow_run_id).parameters
    text = json.dumps(stored)
    assert stored["settings"]["state_dir"] == str(settings.state_dir)  # the settings are there...
    assert secret not in text  # ...without their secrets
    assert token not in text
