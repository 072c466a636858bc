"""Servers as real processes on loopback ports, for benchmarks, load-test demos and server-mode tests.

Concept: test the service as deployed (C43). `running` starts each command in its own process
group with its own environment and log file, waits (bounded) until each answers 200 on its health
path, and on exit sends SIGTERM to every group (a graceful shutdown: our server drains its
prediction log), then SIGKILL to any group still alive after 30 s. A server that exits early or
stays unhealthy raises with the tail of its log, so a broken start is never a silent hang.

`background` does the same for one process without a health path (a Prefect worker, a flow
being served); nested ``with`` blocks stop them in reverse order, clients before their server.
`wait_until` is the bounded poll that tells when such a process has done its part.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
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


def _launch(command: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path | None) -> subprocess.Popen[bytes]:
    """Start ``command`` in a new process group (so its children stop with it), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out, _interruptible_children():  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            list(command), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@contextmanager
def _interruptible_children() -> Iterator[None]:
    """Children started in this block may be interrupted (SIGINT), even if this process ignores SIGINT.

    A process started in the background by a non-interactive shell (``make test &``, many CI runners)
    ignores SIGINT, and an ignored signal stays ignored across ``exec``: a Prefect worker would then
    never act on the SIGINT it sends itself when it gets SIGTERM, and wait to be killed. A handled
    signal is reset to its default in the child, so the parent handles SIGINT while it forks.
    """
    main = threading.current_thread() is threading.main_thread()  # only the main thread may set handlers
    ignored = main and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop(procs: Sequence[subprocess.Popen[bytes]], grace_s: float = 30.0) -> None:
    """SIGTERM every live group, then SIGKILL the groups still alive after ``grace_s``."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # graceful: lifespans run, logs drain
    for proc in procs:
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _tail(log: Path, chars: int = 800) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


@contextmanager
def running(servers: Mapping[str, Server], timeout_s: float = 120.0) -> Iterator[float]:
    """Start every server, wait until each is healthy, yield the start-up time (s); stop them afterwards."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    began = time.monotonic()
    try:
        for name, server in servers.items():
            procs[name] = _launch(server.command, server.env, server.log, None)
        waiting = set(procs)
        while waiting:
            for name in sorted(waiting):
                server = servers[name]
                if answers(server.port, server.health):
                    waiting.discard(name)
                elif procs[name].poll() is not None or time.monotonic() - began > timeout_s:
                    raise RuntimeError(
                        f"the {name} server did not come up on port {server.port}: ...{_tail(server.log)}"
                    )
            time.sleep(0.2)  # readiness poll of a subprocess, bounded by timeout_s
        yield time.monotonic() - began
    finally:
        _stop(list(procs.values()))


@contextmanager
def background(
    command: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path | None = None, grace_s: float = 30.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Run one process (own group, own log) for the ``with`` block; SIGTERM it on exit, SIGKILL after ``grace_s``."""
    proc = _launch(command, env, log, cwd)
    try:
        yield proc
    finally:
        _stop([proc], grace_s)


def wait_until(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    every_s: float = 0.25,
) -> float:
    """Poll ``condition`` until it holds; return the seconds it took.

    Raises:
        RuntimeError: ``proc`` exited first, or ``timeout_s`` passed; the message ends with the log's tail.
    """
    began = time.monotonic()
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"{what}: the process exited with code {proc.returncode}: ...{_tail(log) if log else ''}"
            )
        if time.monotonic() - began > timeout_s:
            raise RuntimeError(f"{what}: not within {timeout_s:.0f} s: ...{_tail(log) if log else ''}")
        time.sleep(every_s)  # a bounded poll of another process's progress
    return time.monotonic() - began
