"""Server mode for MLflow: a real tracking server on PostgreSQL with a served artifact store, picked by settings.

`mlflow server` runs as a process on loopback, its backend a fresh PostgreSQL database and its artifacts
proxied to a folder only the server writes. The project's code is unchanged; only ``MLOPS_TRACKING_URI``
(and, for the API, ``MLOPS_PREDICTION_LOG_URL``) differ. The Prefect training flow and `run_training` log
and register through it, the API loads ``models:/<name>@champion`` from it and follows alias moves made
through it, and the prediction log lands in PostgreSQL. Needs ``MLOPS_TEST_POSTGRES_URL`` (CI sets it via
scripts/test-postgres.sh); skipped otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from core.params import Params
from core.settings import Settings
from ops.local_servers import free_port, running, wait_until
from ops.server_processes import fresh_postgres_database, mlflow_server

POSTGRES_URL = os.environ.get("MLOPS_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not POSTGRES_URL, reason="set MLOPS_TEST_POSTGRES_URL to also run on PostgreSQL"),
]
REPO = Path(__file__).resolve().parents[3]
ROW = {"sepal_length": 6.1, "sepal_width": 2.8, "petal_length": 4.7, "petal_width": 1.2}


class TrackingServer:
    """The running server: its URL, its PostgreSQL database and the folder behind its artifact proxy."""

    def __init__(self, url: str, database_url: str, artifacts: Path) -> None:
        self.url, self.database_url, self.artifacts = url, database_url, artifacts

    def rows(self, query: str) -> list[Any]:
        """Read the server's own tables straight from PostgreSQL (what the server wrote, not what it says)."""
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(query)))
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    assert POSTGRES_URL is not None
    folder = tmp_path_factory.mktemp("mlflow-server")
    with fresh_postgres_database(POSTGRES_URL, "mlflow") as database_url:
        port = free_port()
        proc = mlflow_server(database_url, folder / "artifacts", port, folder / "mlflow-server.log")
        with running({"mlflow": proc}, timeout_s=180):  # creating the schema on PostgreSQL takes ~20 s
            yield TrackingServer(f"http://127.0.0.1:{port}", database_url, folder / "artifacts")


@pytest.fixture(scope="module")
def remote(server: TrackingServer, tmp_path_factory: pytest.TempPathFactory, make_settings) -> Settings:
    """Settings whose only difference from the embedded default is the tracking URI."""
    return make_settings(tmp_path_factory.mktemp("client") / "state", tracking_uri=server.url)


@pytest.fixture(scope="module")
def data(params: Params, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipelines.data import ingest

    return ingest(params.dataset, params.ingest, tmp_path_factory.mktemp("data") / "iris.csv")


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_the_training_flow_tracks_and_registers_on_the_server(
    server: TrackingServer, remote: Settings, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.testing.utilities import prefect_test_harness

    from core.mlflow_config import mlflow_client
    from pipelines.registry import current_aliases
    from pipelines.training_flow import training_flow

    # No settings passed: the flow reads them from the environment, as a deployment's run on a worker does.
    monkeypatch.setenv("MLOPS_TRACKING_URI", server.url)
    monkeypatch.setenv("MLOPS_STATE_DIR", str(remote.state))
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(REPO))
    with prefect_test_harness(server_startup_timeout=90):
        state = training_flow(data_path=str(data), return_state=True)
    assert state.is_completed()
    outcome = state.result()
    assert (outcome.status, outcome.version, outcome.alias) == ("registered", "1", "champion")
    assert current_aliases(remote) == {"champion": "1"}

    # The run, the version and the alias are rows in the server's PostgreSQL database.
    assert server.rows(f"SELECT status FROM runs WHERE run_uuid = '{outcome.run_id}'") == [("FINISHED",)]
    assert server.rows("SELECT name, version FROM model_versions") == [(remote.model_name, 1)]
    assert server.rows("SELECT alias, version FROM registered_model_aliases") == [("champion", 1)]

    # Artifacts went through the server's proxy into its destination folder, none to the client's disk.
    experiment = mlflow_client(remote).get_experiment_by_name(remote.experiment_name)
    assert experiment is not None
    assert experiment.artifact_location.startswith("mlflow-artifacts:/")
    stored = _files(server.artifacts)
    assert any(f.endswith(f"{outcome.run_id}/artifacts/evaluation/evaluation.json") for f in stored), stored
    assert any(f.endswith("/artifacts/MLmodel") for f in stored), stored
    assert not (remote.state / "mlartifacts").exists()


def test_the_api_serves_from_the_server_follows_alias_moves_and_logs_to_postgres(
    server: TrackingServer, remote: Settings, data: Path, params: Params
) -> None:
    from fastapi.testclient import TestClient

    from pipelines.registry import current_aliases, promote, rollback
    from pipelines.training_steps import run_training
    from serving.app import create_app
    from serving.prediction_log import make_engine, predictions_table

    if current_aliases(remote) != {"champion": "1"}:
        pytest.skip("needs the champion registered by the training-flow test above")
    assert run_training(remote, params, data).alias == "challenger"  # non-inferior on the same data: v2
    assert POSTGRES_URL is not None
    with fresh_postgres_database(POSTGRES_URL, "predictions") as log_url:
        serving = remote.model_copy(update={"prediction_log_url": log_url, "poll_interval_s": 0.3})
        served: dict[str, str] = {}  # request id -> model version that answered
        with TestClient(create_app(serving, params)) as client:

            def champion() -> str | None:
                models = client.get("/readyz").json()["models"]
                return models["champion"]["version"] if "champion" in models else None

            def predict(n: int) -> None:
                for _ in range(n):
                    rid = f"server-mode-{len(served):02d}"
                    answer = client.post("/v1/predict", json=ROW, headers={"x-request-id": rid})
                    assert answer.status_code == 200, answer.text
                    served[rid] = answer.json()["model_version"]

            assert champion() == "1"
            predict(5)
            promote(serving, "tester", "server-mode test")  # an alias move made through the tracking server
            wait_until(lambda: champion() == "2", 30, "the API to hot-reload the promoted champion")
            predict(5)
            rollback(serving, "tester", "server-mode test")
            wait_until(lambda: champion() == "1", 30, "the API to hot-reload the restored champion")
            predict(5)
        # The lifespan has flushed the prediction log: every answer is a row in PostgreSQL.
        engine = make_engine(log_url)
        try:
            with engine.connect() as conn:
                columns = sa.select(predictions_table.c.request_id, predictions_table.c.model_version)
                logged = {row.request_id: row.model_version for row in conn.execute(columns)}
        finally:
            engine.dispose()
    assert list(served.values()) == ["1"] * 5 + ["2"] * 5 + ["1"] * 5
    assert logged == served
    assert server.rows("SELECT alias, version FROM registered_model_aliases") == [("champion", 1)]


def test_erasure_deletes_monitoring_reports_through_the_servers_artifact_proxy(
    server: TrackingServer, remote: Settings, tmp_path: Path
) -> None:
    """`privacy erase` reaches report copies on a tracking server too: deleted through its proxy, files gone."""
    from mlflow import MlflowClient

    from monitoring.privacy import REPORT_PREFIX, erase_mlflow_reports

    client = MlflowClient(tracking_uri=remote.mlflow_tracking_uri)
    experiment = client.create_experiment(f"{remote.experiment_name}-monitoring")
    names = [f"{REPORT_PREFIX}20260301T000000000000", f"{REPORT_PREFIX}20260302T000000000000"]
    runs = {}
    for name in names:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "window.csv").write_text("request_id,sepal_length\nerase-me-7f3a,5.0\n")
        run = client.create_run(experiment, run_name=f"monitoring-{name}")
        client.log_artifacts(run.info.run_id, str(folder), "reports")
        runs[name] = run.info.run_id
    assert erase_mlflow_reports(remote, names[:1]) == 1
    assert client.list_artifacts(runs[names[0]], "reports") == []
    assert [f.path for f in client.list_artifacts(runs[names[1]], "reports")] == ["reports/window.csv"]
    stored = [p for p in server.artifacts.rglob("window.csv")]  # what the server's folder still holds
    assert len(stored) == 1
    assert runs[names[1]] in stored[0].as_posix()
