"""CLI command: ``mlops-lab serve [--host 127.0.0.1] [--port 8000] [--workers N]``.

Concept: REST serving (C18). A thin shell over `serving.server.run_server`, which binds the socket
itself so that every worker's connections get TCP_NODELAY (see that module for why). Workers must agree
on the feedback-token key (`serving.credentials`): without ``MLOPS_FEEDBACK_KEY`` and
``MLOPS_ADMIN_TOKEN`` this command makes one random key and hands it to all of its workers through
their environment, so a label may reach another worker than its prediction did.
"""

from __future__ import annotations

import os
import secrets
from typing import Annotated

import typer

from serving.server import APP_FACTORY, run_server


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for all).")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
        workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (uvicorn).")] = 1,
        factory: Annotated[
            str, typer.Option("--app", help="App factory to serve (import string); benchmarks serve baselines.")
        ] = APP_FACTORY,
    ) -> None:
        """Serve the model API: /v1/predict, /invocations (MLflow), /v2 (Open Inference), /metrics."""
        from core.settings import Settings
        from serving.admin import WeakAdminTokenError, check_admin_token

        settings = Settings()
        token = (settings.admin_token or "").strip()
        try:
            if token:
                check_admin_token(token)  # before any worker starts: one clear line instead of a traceback each
        except WeakAdminTokenError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(code=2) from err
        if workers > 1 and not token and not (settings.feedback_key or "").strip():
            # One key for this server's workers (they inherit the environment); other replicas need the setting.
            os.environ["MLOPS_FEEDBACK_KEY"] = secrets.token_urlsafe(32)
        typer.echo(f"serving {factory} on http://{host}:{port} with {workers} worker(s); Ctrl-C stops")
        try:
            run_server(factory, host, port, workers, settings=settings)
        except OSError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(code=1) from err
