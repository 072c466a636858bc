"""The state folder's lease: services share it, a restore needs it alone and names who holds it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.state_lease import StateInUseError, exclusive_lease, holders, shared_lease

HOLDER = """
import sys
from core.state_lease import shared_lease
with shared_lease(__import__("pathlib").Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.readline()  # hold until the test closes our stdin
"""


def test_a_service_in_another_process_keeps_the_exclusive_lease_away_and_is_named(tmp_path: Path) -> None:
    state = tmp_path / "state"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StateInUseError, match="stop them first") as refused, exclusive_lease(state, "restore"):
            pytest.fail("the exclusive lease was granted while a service held the shared one")
        if sys.platform.startswith("linux"):
            assert holders(state) == [holder.pid]
            assert f"pid {holder.pid}" in str(refused.value)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    with exclusive_lease(state, "restore"):  # the holder exited: its lock went with it
        assert holders(state) in ([os.getpid()], [])


def test_services_share_the_lease_and_a_restore_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with (
        shared_lease(tmp_path),
        shared_lease(tmp_path),  # two workers at once
        pytest.raises(StateInUseError),
        exclusive_lease(tmp_path, "restore"),
    ):
        pytest.fail("the exclusive lease was granted while two services held the shared one")
    with exclusive_lease(tmp_path, "restore"):
        pass  # every service stopped: granted
