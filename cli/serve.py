"""CLI command: ``mlops-lab serve [--host 127.0.0.1] [--port 8000] [--workers N]``.

Concept: REST serving (C18). A thin shell over `serving.server.run_server`, which binds the socket
itself so that every worker's connections get TCP_NODELAY (see that module for why).
"""

from __future__ import annotations

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
        typer.echo(f"serving {factory} on http://{host}:{port} with {workers} worker(s); Ctrl-C stops")
        try:
            run_server(factory, host, port, workers, settings=settings)
        except OSError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(code=1) from err
