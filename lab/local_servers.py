"""Servers as real processes on loopback ports, for benchmarks and load-test demos.

Concept: test the service as deployed (C43). `running` starts each command in its own process
group with its own environment and log file, waits (bounded) until each answers 200 on its health
path, and on exit sends SIGTERM to every group (a graceful shutdown: our server drains its
prediction log), then SIGKILL to any group still alive after 30 s. A server that exits early or
stays unhealthy raises with the tail of its log, so a broken start is never a silent hang.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(port: int, path: str) -> bool:
    """True when GET ``path`` on the loopback ``port`` answers 200."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False


@dataclass(frozen=True)
class Server:
    """One process to run: its command, environment, port, health path and log file."""

    command: Sequence[str]
    env: Mapping[str, str]
    port: int
    health: str
    log: Path


@contextmanager
def running(servers: Mapping[str, Server], timeout_s: float = 120.0) -> Iterator[float]:
    """Start every server, wait until each is healthy, yield the start-up time (s); stop them afterwards."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    began = time.monotonic()
    try:
        for name, server in servers.items():
            server.log.parent.mkdir(parents=True, exist_ok=True)
            with server.log.open("wb") as out:  # the child keeps its own copy of the descriptor
                procs[name] = subprocess.Popen(
                    list(server.command), env=dict(server.env), stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
        waiting = set(procs)
        while waiting:
            for name in sorted(waiting):
                server = servers[name]
                if answers(server.port, server.health):
                    waiting.discard(name)
                elif procs[name].poll() is not None or time.monotonic() - began > timeout_s:
                    tail = server.log.read_text(errors="replace")[-800:]
                    raise RuntimeError(f"the {name} server did not come up on port {server.port}: ...{tail}")
            time.sleep(0.2)  # readiness poll of a subprocess, bounded by timeout_s
        yield time.monotonic() - began
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # graceful: lifespans run, logs drain
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
