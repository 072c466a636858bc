"""CLI command ``mlops-lab traffic``: labelled users for a running service, with the labels sent back.

Concepts: REST serving (C18) and the feedback loop (C38). A thin shell over ``bench/traffic_client.py``:
it builds rows (a batch kind from ``pipelines/batches.py``, or a CSV), sends them to ``--url`` one
request per row with ``X-User-Id`` from a pool of users, posts the true labels as feedback, and
prints what each arm answered and how often it was right. Exit 1 if any request failed, so a
script can tell a clean run from a broken one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape

KINDS = ("clean", "covariate-shift", "prior-shift", "concept-shift")  # the valid batch kinds (pipelines/batches.py)
ARMS = ("champion", "challenger", "blue", "green")
console = Console()


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/bold red] {escape(message)}")
    return typer.Exit(1)


def traffic(
    url: Annotated[
        str | None, typer.Option(help="Service base URL [default: $MLOPS_API_URL or http://127.0.0.1:8000].")
    ] = None,
    kind: Annotated[str, typer.Option(help=f"Batch kind the rows come from: {' | '.join(KINDS)}.")] = "clean",
    rows: Annotated[int, typer.Option(min=1, max=100_000, help="Requests to send (one row each).")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed of the rows: the same seed sends the same rows.")] = 0,
    csv: Annotated[
        Path | None, typer.Option(help="Send the rows of this CSV instead (its label column enables feedback).")
    ] = None,
    users: Annotated[int, typer.Option(min=1, help="Size of the user pool (X-User-Id); users repeat.")] = 100,
    feedback: Annotated[bool, typer.Option(help="Post each answer's true label to /v1/feedback.")] = True,
    feedback_every: Annotated[int, typer.Option(min=1, help="Predictions per round; labels follow each round.")] = 50,
    pause: Annotated[float, typer.Option(min=0.0, help="Seconds between rounds (a bandit learns per round).")] = 0.0,
    arm: Annotated[
        str | None,
        typer.Option(help=f"Force an arm with X-Force-Arm: {' | '.join(ARMS)} (needs MLOPS_ADMIN_TOKEN)."),
    ] = None,
    max_seconds: Annotated[float, typer.Option(min=1.0, help="Time cap: stop sending after this long.")] = 120.0,
) -> None:
    """Send labelled rows to a running service (POST /v1/predict), then their true labels (/v1/feedback)."""
    from rich.table import Table

    from bench.traffic_client import (
        REPORT_COLUMNS,
        HttpTransport,
        ServiceUnreachableError,
        batch_rows,
        check_ready,
        frame_rows,
        send_traffic,
        user_pool,
    )
    from core.context import load_context
    from lab.demos.prep import ensure_raw_data
    from pipelines.data import read_csv

    if kind not in KINDS:
        raise _fail(f"--kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if arm is not None and arm not in ARMS:
        raise _fail(f"--arm must be one of {', '.join(ARMS)}; got {arm!r}")
    ctx = load_context()
    base = url or ctx.settings.api_url
    try:
        transport = HttpTransport(base)
        if csv is not None:
            labelled = frame_rows(read_csv(csv), ctx.params)[:rows]
            source = f"{csv} ({len(labelled)} rows)"
        else:
            labelled = batch_rows(kind, read_csv(ensure_raw_data(ctx)), ctx.params, rows, seed)
            source = f"{rows} {kind} rows (seed {seed})"
    except (ValueError, FileNotFoundError) as err:
        raise _fail(str(err)) from None
    try:
        ready = check_ready(transport, base, urlsplit(base).port)
        models = ", ".join(f"{a} v{m['version']}" for a, m in sorted(ready.get("models", {}).items()))
        console.print(f"service {escape(base)} serves {escape(models)}; sending {escape(source)}")
        report = send_traffic(
            transport,
            labelled,
            user_pool(users),
            feedback=feedback,
            feedback_every=feedback_every,
            arm=arm,
            admin_auth=ctx.settings.admin_token,
            pause_s=pause,
            max_seconds=max_seconds,
        )
    except ServiceUnreachableError as err:
        raise _fail(str(err)) from None
    finally:
        transport.close()

    table = Table(*REPORT_COLUMNS, title=f"{report.total} answers in {report.elapsed_s:.1f} s", title_justify="left")
    for row in report.rows():
        table.add_row(*row)
    console.print(table)
    if feedback:
        labels = ", ".join(f"{n} {status}" for status, n in sorted(report.feedback.items())) or "none"
        console.print(f"feedback (true labels sent back): {labels}")
    if report.stopped:
        console.print(f"[yellow]stopped early: {escape(report.stopped)}; {report.not_sent} rows not sent[/yellow]")
    if report.failed:
        for note in report.failures:
            console.print(f"[red]  {escape(note)}[/red]")
        raise _fail(f"{report.failed} request(s) failed (first ones above)")
    if report.not_sent:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``traffic`` command to the CLI."""
    app.command("traffic")(traffic)
