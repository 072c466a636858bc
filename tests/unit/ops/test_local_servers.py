"""Servers we start can be interrupted, whatever the signal dispositions of the process starting them.

A process started in the background by a non-interactive shell ignores SIGINT, and an ignored signal
stays ignored across ``exec``. A Prefect worker stops on SIGTERM by sending itself SIGINT, so a worker
started from such a process (``make test &``, a CI runner) waited to be killed. `background` and
`running` start their processes with SIGINT at its default, and leave this process's own handler as
it was.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.local_servers import background, wait_until

PROBE = [sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN, flush=True)"]


@pytest.fixture
def sigint_ignored() -> Iterator[None]:
    """This process ignores SIGINT, as one started in the background by a non-interactive shell does."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("sigint_ignored")
def test_a_started_process_does_not_inherit_an_ignored_sigint(tmp_path: Path) -> None:
    log = tmp_path / "probe.log"
    with background(PROBE, {}, log) as proc:
        wait_until(lambda: proc.poll() is not None, 60, "the probe to finish")
    assert log.read_text().strip() == "False"  # SIGINT at its default in the child
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # and still ignored here


@pytest.mark.usefixtures("sigint_ignored")
def test_without_the_reset_the_child_would_ignore_sigint() -> None:
    """The control: a plain Popen from this process hands the ignored SIGINT on."""
    out = subprocess.run(PROBE, capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "True"
