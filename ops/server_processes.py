"""The engines a growing team moves to, started as real processes on loopback: MLflow and Prefect servers.

Concept: configuration management (C48) -- the same code on other engines, chosen by settings alone.
The embedded defaults (MLflow on a SQLite file, Prefect's ephemeral API) and these servers speak the
same client APIs, so moving is a matter of ``MLOPS_TRACKING_URI`` and ``PREFECT_API_URL``. This module
holds only *how to start* each server (command line, environment, health path) as a
`ops.local_servers.Server`, plus a throwaway PostgreSQL database per use; starting, waiting and
stopping is `ops.local_servers`' job. The server-mode tests and docs/deployment-modes.md use it.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ops.local_servers import Server

# Telemetry and chatter off: the servers run offline and their logs are read when something breaks.
QUIET = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
}


def venv_tool(name: str) -> str:
    """The console script ``name`` installed next to this interpreter (the project's venv)."""
    tool = Path(sys.executable).with_name(name)
    if not tool.exists():
        raise FileNotFoundError(f"{tool} is missing: install the project's environment (`uv sync`)")
    return str(tool)


def mlflow_server(
    backend_uri: str, artifacts: Path, port: int, log: Path, workers: int = 1, auth: dict[str, str] | None = None
) -> Server:
    """An MLflow tracking server + registry on ``backend_uri``, proxying artifacts to the folder ``artifacts``.

    With ``--serve-artifacts`` new experiments get ``mlflow-artifacts:/<id>`` locations: clients upload
    and download through the server over HTTP and never need access to the store behind it.

    ``auth``: run MLflow's basic-auth app in front of it, as compose and k8s do (docker/mlflow/basic_auth.ini);
    the mapping holds its environment: ``MLFLOW_AUTH_CONFIG_PATH`` (a copy of that file pointing at a users
    database of its own), ``MLFLOW_AUTH_ADMIN_PASSWORD`` and ``MLFLOW_FLASK_SERVER_SECRET_KEY``.
    """
    command = [
        venv_tool("mlflow"), "server",
        "--backend-store-uri", backend_uri,
        "--serve-artifacts", "--artifacts-destination", str(artifacts),
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers),  # the default 4 is too many for a test on a 2-core box
        *(("--app-name", "basic-auth") if auth is not None else ()),
    ]  # fmt: skip
    return Server(command, {**os.environ, **QUIET, **(auth or {})}, port, "/health", log)


def prefect_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """Environment for a Prefect process: its home and database under ``home``, quiet, and the API to use."""
    home.mkdir(parents=True, exist_ok=True)  # the SQLite file's folder must exist before the server opens it
    env = {
        **os.environ,
        **QUIET,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
    }
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    else:
        env.pop("PREFECT_API_URL", None)
    return env


def prefect_server(home: Path, port: int, log: Path) -> Server:
    """``prefect server start`` on loopback: the API (``/api``) with its database in ``home``."""
    command = [venv_tool("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    return Server(command, prefect_env(home), port, "/api/health", log)


@contextmanager
def fresh_postgres_database(admin_url: str, prefix: str) -> Iterator[str]:
    """Create an empty database ``<prefix>_<random>`` next to ``admin_url``; yield its URL; drop it afterwards.

    Args:
        admin_url: SQLAlchemy URL of a database on the server with the right to CREATE DATABASE
            (e.g. ``postgresql+psycopg://postgres@127.0.0.1:55432/postgres``).
        prefix: a lowercase identifier, e.g. ``mlflow``.
    """
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"  # lowercase letters, digits, underscore: no quoting needed
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")  # CREATE DATABASE refuses a transaction
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        try:
            yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:  # FORCE: a server still holding connections must not keep it alive
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        admin.dispose()
