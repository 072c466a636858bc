"""Authentication in front of the MLflow server (C44): the registry cannot be written by whoever reaches it.

The attack this closes: with no auth on the tracking server, anyone on its network could register a model
version and move the ``champion`` alias, which every API replica then loads. Here a real `mlflow server` runs
MLflow's basic-auth app with the project's own config (docker/mlflow/basic_auth.ini, the file the image
ships, pointed at a users database in a temp folder) on a SQLite backend on loopback. Anonymous and
wrong-password clients are refused and change nothing; our settings-built client with the service
credentials (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, as compose and k8s set them) works; a
user nobody granted anything sees nothing (default permission NO_PERMISSIONS); the probes' /health stays
open.
"""

from __future__ import annotations

import configparser
import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from core.mlflow_config import mlflow_client
from core.settings import Settings
from ops.local_servers import free_port, running
from ops.server_processes import mlflow_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
SHIPPED_CONFIG = REPO / "docker" / "mlflow" / "basic_auth.ini"
ADMIN, ADMIN_PASSWORD = "mlops", "test-mlflow-admin-password"
MODEL = "iris-classifier"


def _config_for(folder: Path) -> Path:
    """The shipped config with only its users database moved into ``folder``."""
    config = configparser.ConfigParser()
    config.read(SHIPPED_CONFIG)
    config["mlflow"]["database_uri"] = f"sqlite:///{folder / 'basic_auth.db'}"
    path = folder / "basic_auth.ini"
    with path.open("w") as out:
        config.write(out)
    return path


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("mlflow-auth")
    auth = {
        "MLFLOW_AUTH_CONFIG_PATH": str(_config_for(folder)),
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-flask-secret-key-0123456789",
    }
    port = free_port()
    backend = f"sqlite:///{folder / 'mlflow.db'}"
    proc = mlflow_server(backend, folder / "artifacts", port, folder / "mlflow-server.log", auth=auth)
    with running({"mlflow": proc}, timeout_s=180):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch) -> object:
    """Set (or clear) the credentials MLflow's client reads from the environment."""

    def login(user: str | None, password: str | None = None) -> None:
        for name, value in (("MLFLOW_TRACKING_USERNAME", user), ("MLFLOW_TRACKING_PASSWORD", password)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a refusal is final; no backoff in a test
    return login


def _client(server_url: str) -> MlflowClient:
    """A plain client of the server, for the registry too (never a registry URI set earlier in this process)."""
    return MlflowClient(tracking_uri=server_url, registry_uri=server_url)


def _service_client(server_url: str, tmp_path: Path) -> MlflowClient:
    settings = Settings(project_dir=REPO, state_dir=tmp_path / "state", tracking_uri=server_url)
    return mlflow_client(settings)


def test_the_shipped_config_grants_nothing_by_default_and_keeps_passwords_out() -> None:
    config = configparser.ConfigParser()
    config.read(SHIPPED_CONFIG)
    assert config["mlflow"]["default_permission"] == "NO_PERMISSIONS"
    assert config["mlflow"]["admin_username"] == ADMIN  # the user compose and k8s log in as
    assert "admin_password" not in config["mlflow"]  # from a secret (MLFLOW_AUTH_ADMIN_PASSWORD), never the file


def test_health_stays_open_for_probes(server_url: str) -> None:
    host, port = server_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    for path, status in (("/health", 200), ("/api/2.0/mlflow/registered-models/search", 401)):
        conn.request("GET", path)
        answer = conn.getresponse()
        answer.read()
        assert (path, answer.status) == (path, status)  # the same server refuses an anonymous registry read


@pytest.mark.parametrize("password", [None, "wrong-test-password"], ids=["anonymous", "wrong-password"])
def test_a_client_without_the_service_credentials_cannot_register_or_move_the_champion(
    server_url: str, tmp_path: Path, as_user, password: str | None
) -> None:
    as_user(ADMIN, ADMIN_PASSWORD)
    service = _service_client(server_url, tmp_path)
    if not service.search_registered_models(f"name = '{MODEL}'"):
        service.create_registered_model(MODEL)
    before = service.get_registered_model(MODEL).aliases

    as_user(None if password is None else ADMIN, password)
    intruder = _client(server_url)
    with pytest.raises(MlflowException, match=r"401|Unauthorized|credentials"):
        intruder.create_registered_model("planted-model")
    with pytest.raises(MlflowException, match=r"401|Unauthorized|credentials"):
        intruder.set_registered_model_alias(MODEL, "champion", "1")

    as_user(ADMIN, ADMIN_PASSWORD)
    assert not service.search_registered_models("name = 'planted-model'")
    assert service.get_registered_model(MODEL).aliases == before


def test_a_user_granted_nothing_sees_nothing(server_url: str, tmp_path: Path, as_user) -> None:
    from mlflow.server.auth.client import AuthServiceClient

    as_user(ADMIN, ADMIN_PASSWORD)
    service = _service_client(server_url, tmp_path)
    if not service.search_registered_models(f"name = '{MODEL}'"):
        service.create_registered_model(MODEL)
    users = AuthServiceClient(server_url)
    try:
        users.get_user("reader")
    except MlflowException:
        users.create_user("reader", "test-reader-password")

    as_user("reader", "test-reader-password")
    with pytest.raises(MlflowException, match=r"403|PERMISSION_DENIED|Permission denied"):
        _client(server_url).get_registered_model(MODEL)
