"""Demo ``streaming`` (C63): two scoring workers in one consumer group on a real Redis, one killed mid-stream.

Starts a real ``redis-server`` on a free loopback port (`ops.local_redis`), starts two workers in one consumer
group (w1 an ``mlops-lab stream-score`` process, so it can be killed; w2 the same loop on a thread of the demo, which
saves a second process's start-up), writes feature events with a few poison messages among them, and kills one
worker with SIGKILL while it holds messages it has not acknowledged. The other claims them after the claim
timeout. Then the facts, each read from where it lives: the prediction log holds every clean message exactly once
(under its message id), the dead-letter stream holds the poison with its reasons, and the survivor's /metrics
shows what it claimed and a lag and a pending count of 0.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from lab.demos import MissingPrerequisiteError
from lab.demos.prep import display_path, ensure_champion
from ops.local_redis import RedisNotInstalledError, redis_binary, redis_on_loopback
from ops.local_servers import background, free_port, wait_until
from pipelines.batches import generate_batch
from pipelines.data import read_csv
from serving.contract import RequestContract
from serving.stream_messages import DEAD_ORIGINAL_ID, DEAD_REASON
from serving.stream_producer import feature_payloads, poison_payloads, produce
from serving.stream_worker import dead_stream, serve_stream

if TYPE_CHECKING:
    import redis

    from core.context import LabContext
    from core.settings import Settings
    from lab.narrate import Narrator

EVENTS, POISON, SEED = 6_000, 6, 5
CLAIM_IDLE_S = 2.0  # short for the demo; production keeps the default 30 s (docs/streaming.md)
TIMEOUT_S = 120.0
PASSED_ON = ("project_dir", "params_file", "tracking_uri", "registry_uri", "artifact_root", "model_name")


def worker_environment(settings: Settings, redis_url: str) -> dict[str, str]:
    """A worker process's environment: the demo's registry, prediction log and feedback key, this broker, a short
    claim timeout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}  # only what the demo decides
    env |= {f"MLOPS_{name.upper()}": str(value) for name in PASSED_ON if (value := getattr(settings, name)) is not None}
    env |= {
        "MLOPS_STATE_DIR": str(settings.state),
        "MLOPS_PREDICTION_LOG_URL": settings.prediction_log_uri,
        "MLOPS_REDIS_URL": redis_url,
        "MLOPS_STREAM_CLAIM_IDLE_S": str(CLAIM_IDLE_S),
        "MLOPS_FEEDBACK_KEY": str(settings.feedback_key),
    }
    return env | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}


def scrape(port: int) -> str:
    """A worker's /metrics text ('' while it is not up yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return str(answer.read().decode())
    except OSError:
        return ""


def sample(text: str, series: str) -> float | None:
    """One sample of ``series`` (name with labels, as exposed) in a /metrics text."""
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def held_by(client: redis.Redis, settings: Settings, consumer: str) -> int:
    """Messages delivered to ``consumer`` and not acknowledged (its pending-entries list)."""
    consumers = client.xinfo_consumers(settings.stream_name, settings.stream_group)
    return sum(int(c["pending"]) for c in consumers if c["name"] == consumer.encode())


def logged_ids(settings: Settings) -> list[str]:
    """Every request id in the prediction log (the stream's message ids)."""
    import sqlalchemy as sa

    from serving.prediction_log import predictions_table

    engine = sa.create_engine(settings.prediction_log_uri)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(predictions_table.name):
                return []
            return list(conn.scalars(sa.select(predictions_table.c.request_id)))
    finally:
        engine.dispose()


def run(n: Narrator, ctx: LabContext) -> None:
    n.title("Streaming inference: a consumer group on Redis Streams, a worker killed mid-stream", "C63")
    try:
        binary = redis_binary()
    except RedisNotInstalledError as err:
        n.bad(str(err))
        raise MissingPrerequisiteError(str(err)) from None
    import redis

    version = ensure_champion(ctx, n)
    s = ctx.settings
    folder = s.state / "stream"
    n.step("A real broker: redis-server on a free loopback port, no persistence, gone after the demo")
    with redis_on_loopback(folder / "redis", binary) as url:
        client = redis.Redis.from_url(url, socket_timeout=30)
        n.say(f"{url}; stream {s.stream_name}, group {s.stream_group}, dead letters {dead_stream(s.stream_name)}")
        try:
            _demo(n, ctx, client, url, version, folder)
        finally:
            client.close()


def _demo(n: Narrator, ctx: LabContext, client: redis.Redis, url: str, version: str, folder: Path) -> None:
    # One feedback key for both workers (as for API replicas), so neither warns that its own is random.
    s = ctx.settings.model_copy(update={"feedback_key": ctx.settings.feedback_key or secrets.token_urlsafe(32)})
    dataset = ctx.params.dataset
    cli = str(Path(sys.executable).parent / "mlops-lab")
    ports = {"w1": free_port(), "w2": free_port()}
    log = folder / "w1.log"

    n.step(f"Two workers in one consumer group, claim timeout {CLAIM_IDLE_S:g} s, scoring with champion v{version}")
    command = [cli, "stream-score", "--consumer", "w1", "--metrics-port", str(ports["w1"])]
    stop = threading.Event()
    w2_settings = s.model_copy(update={"redis_url": url, "stream_claim_idle_s": CLAIM_IDLE_S})
    w2 = threading.Thread(
        target=serve_stream, args=(w2_settings, ctx.params, "w2"), kwargs={"metrics_port": ports["w2"], "stop": stop},
        name="stream-worker-w2", daemon=True,
    )  # fmt: skip
    with background(command, worker_environment(s, url), log) as w1:
        frame = generate_batch("clean", read_csv(s.resolve(dataset.path)), ctx.params, rows=EVENTS, seed=SEED,
                               unique_rows=False)  # fmt: skip
        payloads = feature_payloads(frame, list(dataset.features))
        payloads += poison_payloads(POISON, RequestContract.from_dataset(dataset))
        took = wait_until(lambda: bool(scrape(ports["w1"])), TIMEOUT_S, "worker w1 start", w1, log)
        n.say(f"w1: a process (`mlops-lab stream-score --consumer w1`, pid {w1.pid}), up in {took:.1f} s; "
              f"log {display_path(ctx, log)}")  # fmt: skip
        quiet = logging.getLogger("serving.stream_worker")  # w2's per-message warnings: the narration tells them
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        w2.start()
        try:
            took = wait_until(lambda: bool(scrape(ports["w2"])), TIMEOUT_S, "worker w2 start")
            n.say(f"w2: a thread of this demo running the same loop (`serve_stream`), up in {took:.1f} s")
            _stream(n, client, s, payloads, w1, log, ports)
        finally:
            stop.set()  # w2 finishes what it holds, flushes its log and returns
            w2.join(timeout=TIMEOUT_S)
            quiet.setLevel(level)
    _facts(n, client, s)


def _stream(
    n: Narrator,
    client: redis.Redis,
    s: Settings,
    payloads: list[bytes],
    w1: subprocess.Popen[bytes],
    log: Path,
    ports: dict[str, int],
) -> None:
    """Produce, kill w1 while it holds messages, wait until w2 has drained the stream; narrate w2's /metrics."""
    n.step(f"The producer writes {EVENTS:,} feature events with {POISON} poison messages among them")
    ids = produce(client, s.stream_name, payloads, seed=SEED)
    n.say(f"XADD x {len(ids):,}: message ids {ids[0]} .. {ids[-1]}")

    n.step("Kill w1 with SIGKILL while it holds messages it has not acknowledged")

    def w1_frozen_holding_messages() -> bool:
        """Freeze w1 (SIGSTOP) once it has scored; keep it frozen if it holds unacked messages then."""
        if not sample(scrape(ports["w1"]), 'mlops_stream_messages_total{outcome="scored"}'):
            return False
        os.killpg(w1.pid, signal.SIGSTOP)
        if held_by(client, s, "w1") > 0:
            return True
        os.killpg(w1.pid, signal.SIGCONT)  # between an ack and its next read: let it go on
        return False

    wait_until(w1_frozen_holding_messages, TIMEOUT_S, "w1 holding unacked messages", w1, log, every_s=0.02)
    os.killpg(w1.pid, signal.SIGKILL)
    w1.wait(timeout=30)
    held = held_by(client, s, "w1")
    n.bad(f"w1 killed (exit {w1.returncode}) holding {held} messages, delivered to it and never acknowledged; "
          f"{len(logged_ids(s)):,} predictions logged so far")  # fmt: skip
    n.why("no ack without a committed log row: a crash leaves a message pending, never lost")

    n.step(f"w2 goes on alone and claims w1's messages once they are idle for {CLAIM_IDLE_S:g} s (XAUTOCLAIM)")

    def drained() -> bool:
        text = scrape(ports["w2"])
        done = sample(text, "mlops_stream_lag_messages") == 0 and sample(text, "mlops_stream_pending_messages") == 0
        return done and held_by(client, s, "w1") == 0

    took = wait_until(drained, TIMEOUT_S, "w2 draining the stream")
    text = scrape(ports["w2"])
    claimed = int(sample(text, 'mlops_stream_messages_total{outcome="claimed"}') or 0)
    n.ok(f"drained {took:.1f} s after the kill: w2 claimed {claimed} messages; w1's pending list now "
         f"{held_by(client, s, 'w1')}")  # fmt: skip
    series = (
        'mlops_stream_messages_total{outcome="scored"}',
        'mlops_stream_messages_total{outcome="dead_lettered"}',
        'mlops_stream_messages_total{outcome="claimed"}',
        "mlops_stream_lag_messages",
        "mlops_stream_pending_messages",
    )
    n.table("w2's /metrics", ["series", "value"], [[name, f"{sample(text, name):g}"] for name in series])


def _facts(n: Narrator, client: redis.Redis, s: Settings) -> None:
    """What the log and the dead-letter stream hold, against the stream itself."""
    n.step("Every clean message exactly once in the prediction log, under its message id")
    ids_logged = logged_ids(s)
    dead: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(dead_stream(s.stream_name))  # type: ignore[assignment]
    dead_ids = {fields[DEAD_ORIGINAL_ID].decode() for _, fields in dead}
    stream: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(s.stream_name)  # type: ignore[assignment]
    expected = {mid.decode() for mid, _ in stream} - dead_ids
    once = len(ids_logged) == len(set(ids_logged)) and set(ids_logged) == expected
    (n.ok if once else n.bad)(
        f"{len(ids_logged):,} rows for {len(expected):,} clean messages, {len(set(ids_logged)):,} distinct ids: "
        f"each logged once: {once}"
    )
    n.why("a claimed message may be scored twice (w1 may have written it before it died); the log ignores a "
          "second row with the same id, so it is logged once")  # fmt: skip

    n.step("The poison went to the dead-letter stream with its reason; nothing blocked the group")
    n.table(f"{dead_stream(s.stream_name)}: {len(dead)} dead letters", ["original id", "reason"],
            [[f[DEAD_ORIGINAL_ID].decode(), f[DEAD_REASON].decode()] for _, f in dead])  # fmt: skip
    n.code("serving/stream_worker.py", "serving/stream_messages.py", "cli/stream.py", "ops/local_redis.py")
