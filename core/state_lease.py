"""A lease on the state folder: services share it while they run, a restore needs it alone.

Concept: disaster recovery (C50). A restore replaces the registry and the prediction log files; a
service that still has the old files open keeps answering and writes its log to a file nobody will
ever read again. So every long-running process that writes the state (the API, from its lifespan)
holds a *shared* ``flock`` on ``<state>/.state-lease`` for its lifetime, and ``restore`` (and
``reset``) takes an *exclusive* one without waiting: while any service runs, it is refused, naming
the processes. The kernel drops a process's locks when it exits, even on SIGKILL, so a crashed
service never leaves a stale lease behind. Scope: processes on this machine using this folder;
a PostgreSQL prediction log or a remote MLflow server is not covered (their own tools apply).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LEASE_FILE = ".state-lease"


class StateInUseError(RuntimeError):
    """Another process holds the state folder's lease: it must stop first."""


def _open(state: Path) -> int:
    state.mkdir(parents=True, exist_ok=True)
    return os.open(state / LEASE_FILE, os.O_RDWR | os.O_CREAT, 0o600)


def holders(state: Path) -> list[int]:
    """Process ids holding a lock on the lease file, from /proc/locks (Linux); [] where it cannot be read."""
    try:
        inode = (state / LEASE_FILE).stat().st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    pids = set()
    for line in lines:  # "1: FLOCK  ADVISORY  READ  1234 08:01:5678 0 EOF"
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            pids.add(int(fields[4]))
    return sorted(pids)


@contextmanager
def shared_lease(state: Path) -> Iterator[None]:
    """Hold a shared lease on ``state`` while the block runs (a service's lifetime); waits out a restore."""
    fd = _open(state)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def exclusive_lease(state: Path, action: str) -> Iterator[None]:
    """Hold the lease alone while the block runs, or refuse at once if any service holds it.

    Raises:
        StateInUseError: a running process holds the shared lease; the message names it.
    """
    fd = _open(state)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pids = holders(state)
            who = f"{len(pids)} process(es) (pid {', '.join(map(str, pids))})" if pids else "a running service"
            raise StateInUseError(
                f"{who} are using the state in {state}: stop them first (`mlops-lab serve`, uvicorn workers), "
                f"then {action} again"
            ) from None
        yield
    finally:
        os.close(fd)
