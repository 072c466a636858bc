"""CLI commands: `mlops-lab stream-score` (a worker of the consumer group) and `mlops-lab stream-produce`.

Concept: streaming inference (C63). Thin shells over ``serving/stream_worker.py`` and ``serving/stream_producer.py``;
the broker is ``MLOPS_REDIS_URL``, the stream ``MLOPS_STREAM_NAME``, the group ``MLOPS_STREAM_GROUP``. SIGTERM or
SIGINT stops a worker gracefully: the messages in hand are finished, the prediction log is flushed, exit 0.
The worker's anomaly detector (`monitoring.stream_anomaly`, judged against the champion's training data) is wired
here, in the top layer, because serving may not import monitoring.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from core.context import LabContext
    from monitoring.stream_anomaly import StreamAnomalyDetector

console = Console()


def stream_score(
    consumer: Annotated[
        str | None, typer.Option(help="This worker's name in the group (default: host name and process id).")
    ] = None,
    max_messages: Annotated[
        int | None, typer.Option(min=1, help="Stop after finishing this many messages (default: run until stopped).")
    ] = None,
    metrics_port: Annotated[int, typer.Option(min=0, max=65535, help="Serve /metrics at this port; 0 = off.")] = 0,
    metrics_host: Annotated[
        str, typer.Option(help="The address /metrics listens on: 0.0.0.0 in a container, for Prometheus.")
    ] = "127.0.0.1",
    anomalies: Annotated[
        bool, typer.Option(help="Judge each scored event's novelty against the champion's training data.")
    ] = True,
) -> None:
    """Score feature events from the Redis stream as one worker of the consumer group, into the prediction log."""
    import signal
    import threading

    from core.context import load_context
    from core.redact import redact
    from serving.stream_worker import dead_stream, serve_stream

    ctx = load_context()
    settings = ctx.settings
    observer = _anomaly_detector(ctx) if anomalies else None
    name = consumer or f"{socket.gethostname()}-{os.getpid()}"
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())  # the loop sees it within one read's block time
    console.print(
        f"stream-score: consumer {escape(name)} of group {escape(settings.stream_group)} on "
        f"{escape(settings.stream_name)} at {escape(redact(settings.redis_url))} "
        f"(dead letters: {escape(dead_stream(settings.stream_name))})"
    )
    finished = serve_stream(
        settings, ctx.params, name, max_messages=max_messages, metrics_port=metrics_port, metrics_host=metrics_host,
        stop=stop, observer=observer,
    )  # fmt: skip
    console.print(f"stream-score: {finished} messages finished; prediction log flushed")


def _anomaly_detector(ctx: LabContext) -> StreamAnomalyDetector | None:
    """The per-message detector on the champion's training data (None, said aloud, if there is no such file)."""
    from monitoring.reference import champion_reference
    from monitoring.stream_anomaly import StreamAnomalyDetector

    try:
        reference = champion_reference(ctx.settings, ctx.params)
    except FileNotFoundError as err:
        console.print(f"stream-score: anomaly detection off, no reference data ({escape(str(err))})")
        return None
    console.print(f"stream-score: anomaly detection against {escape(reference.note)}")
    return StreamAnomalyDetector.from_reference(reference.frame, ctx.params.dataset, ctx.params.monitoring.anomaly)


def stream_produce(
    count: Annotated[int, typer.Option(min=0, max=100_000, help="Feature events (clean rows) to write.")] = 100,
    poison: Annotated[int, typer.Option(min=0, max=10_000, help="Poison messages mixed in.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the rows, the poison and their order.")] = 0,
) -> None:
    """Write feature events (rows of a clean production batch) and poison messages to the Redis stream."""
    import redis

    from core.context import load_context
    from core.redact import redact
    from pipelines.batches import generate_batch
    from pipelines.data import ingest, read_csv
    from serving.contract import RequestContract
    from serving.stream_producer import feature_payloads, poison_payloads, produce

    ctx = load_context()
    dataset = ctx.params.dataset
    raw = ctx.settings.resolve(dataset.path)
    if not raw.exists():
        ingest(dataset, ctx.params.ingest, raw)
    features = list(dataset.features)
    payloads = []
    if count:
        frame = generate_batch("clean", read_csv(raw), ctx.params, rows=count, seed=seed, unique_rows=False)
        payloads = feature_payloads(frame, features)
    payloads += poison_payloads(poison, RequestContract.from_dataset(dataset))
    client = redis.Redis.from_url(ctx.settings.redis_url, socket_timeout=30, socket_connect_timeout=10)
    try:
        ids = produce(client, ctx.settings.stream_name, payloads, seed=seed)
    except redis.exceptions.ConnectionError as err:
        console.print(f"[red]cannot reach the broker at {escape(redact(ctx.settings.redis_url))}: "
                      f"{escape(redact(str(err)))}[/red]")  # fmt: skip
        raise typer.Exit(1) from None
    finally:
        client.close()
    console.print(
        f"wrote {count} feature events and {poison} poison messages to {escape(ctx.settings.stream_name)} "
        f"({ids[0] if ids else '-'} .. {ids[-1] if ids else '-'})"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("stream-score")(stream_score)
    app.command("stream-produce")(stream_produce)
