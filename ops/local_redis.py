"""A real redis-server on a free loopback port, started in a folder of its own and stopped after: the broker
the streaming demo and tests run on.

Concept: streaming inference on a real broker (C63), with no Docker engine and no configuration. Debian's
``redis-server`` binary starts in milliseconds; it is given a free port, ``127.0.0.1`` only, and no
persistence (``--save ""``, no append-only file), so each run gets an empty broker that leaves nothing behind.
Start-up is a bounded readiness poll (PING), and a port another process takes between our probe and redis's
bind is retried on a new one.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ops.local_servers import free_port

START_TIMEOUT_S = 20.0
INSTALL_HINT = "sudo apt-get install -y --no-install-recommends redis-server"


class RedisNotInstalledError(RuntimeError):
    """No ``redis-server`` on PATH; the message says how to install it."""


def redis_binary() -> str:
    """The path of ``redis-server``.

    Raises:
        RedisNotInstalledError: it is not on PATH (the message names ``apt-get install redis-server``).
    """
    path = shutil.which("redis-server")
    if path is None:
        raise RedisNotInstalledError(f"redis-server is not installed (a real broker is needed): {INSTALL_HINT}")
    return path


def _answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False
    finally:
        client.close()


@contextmanager
def redis_on_loopback(folder: Path, binary: str | None = None) -> Iterator[str]:
    """Start redis-server on a free loopback port with its files in ``folder``; yield its URL; stop it.

    Raises:
        RedisNotInstalledError: no ``binary`` given and none on PATH.
        RuntimeError: it did not answer PING within START_TIMEOUT_S, or exited at start three times.
    """
    binary = binary or redis_binary()
    folder.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):  # another process may take the free port between our probe and redis's bind
        port = free_port()
        log = folder / f"redis-{port}.log"
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(folder), "--logfile", str(log)]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + START_TIMEOUT_S
        while proc.poll() is None and not _answers(url):  # readiness poll, bounded by the deadline
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait(timeout=10)
                raise RuntimeError(f"redis-server did not answer PING within {START_TIMEOUT_S:g} s: {_tail(log)}")
            time.sleep(0.02)
        if proc.poll() is None:
            break
    else:
        raise RuntimeError(f"redis-server exited at start three times; last log: {_tail(log)}")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _tail(log: Path, chars: int = 800) -> str:
    try:
        return log.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return "(no log)"
