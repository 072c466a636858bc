"""A real redis-server on a loopback port, for the streaming tests: started in a temp folder, stopped after.

Debian's ``redis-server`` (scripts/system-tools.sh installs it; `tests.system_tools.system_tool` skips or, in CI,
fails a test without it). No persistence (``--save ""``, no append-only file): each test gets an empty broker.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ops.local_servers import free_port
from tests.system_tools import system_tool

START_TIMEOUT_S = 20.0


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
def redis_on_loopback(folder: Path) -> Iterator[str]:
    """Start redis-server on a free loopback port with its files in ``folder``; yield its URL; stop it."""
    binary = system_tool("redis-server")
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
