"""The system tools some tests call, and how a machine gets them.

`make test` installs the Debian ones when it can (scripts/system-tools.sh). Away from CI a missing tool
skips the tests that need it, naming the install command; in CI (CI=true) it fails them, since a green
CI run must have run everything.
"""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL = {
    "promtool": "sudo apt-get install -y --no-install-recommends prometheus",
    "prometheus": "sudo apt-get install -y --no-install-recommends prometheus",
    "wrk": "sudo apt-get install -y --no-install-recommends wrk",
    "chromium": "sudo apt-get install -y --no-install-recommends chromium",
    "redis-server": "sudo apt-get install -y --no-install-recommends redis-server",
    "kubectl": "install kubectl (https://kubernetes.io/docs/tasks/tools/); Debian 12 does not package it",
}


def system_tool(name: str) -> str:
    """The path of a system tool the test needs; skips (or in CI fails) the test, saying how to install it."""
    path = shutil.which(name)
    if path is not None:
        return path
    reason = f"{name} is not installed: {INSTALL[name]}"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)
