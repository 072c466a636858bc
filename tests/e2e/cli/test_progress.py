"""Long commands show a spinner on a terminal and print nothing extra elsewhere.

`mlops-lab monitor --dry-run` runs in a real pseudo-terminal (the spinner is drawn) and in a pipe (it is
not: logs, CI output and tests stay as they were). Both end with the same findings and decision.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
CLI = str(Path(sys.executable).with_name("mlops-lab"))
SPINNER_TEXT = "monitoring: every drift and decay check"


def _env(state: Path) -> dict[str, str]:
    env = {**os.environ, "MLOPS_STATE_DIR": str(state), "COLUMNS": "100", "TERM": "xterm"}
    for key in [k for k in env if k.startswith("PREFECT_")]:
        del env[key]  # the CLI process configures its own local Prefect API under the state dir
    return env


def _run_in_a_terminal(args: list[str], env: dict[str, str], timeout_s: float = 240) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal; (exit code, everything it drew)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(args, cwd=REPO, env=env, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while True:
        assert time.monotonic() < deadline, "the command did not finish in time"
        ready, _, _ = select.select([leader], [], [], 1.0)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return process.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


def test_monitor_spins_on_a_terminal_and_not_in_a_pipe(tmp_path: Path) -> None:
    # The reference data monitor compares with before any champion exists (a fresh clone has none yet).
    assert subprocess.run([CLI, "ingest"], cwd=REPO, env=_env(tmp_path / "tty"), capture_output=True).returncode == 0
    code, drawn = _run_in_a_terminal([CLI, "monitor", "--dry-run"], _env(tmp_path / "tty"))
    assert code == 0, drawn
    assert SPINNER_TEXT in drawn
    assert "decision:" in drawn
    piped = subprocess.run(
        [CLI, "monitor", "--dry-run"],
        cwd=REPO,
        env=_env(tmp_path / "pipe"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert piped.returncode == 0, piped.stdout + piped.stderr
    assert "decision:" in piped.stdout
    assert SPINNER_TEXT not in piped.stdout + piped.stderr
