"""A real browser for the tests: headless Chromium from Debian, with the network blocked.

Every request that is not to a loopback address goes to a proxy on 127.0.0.1:9, where nothing listens,
so a page that needs a CDN renders the way it would on a laptop without a network. ``rendered_dom``
returns the DOM after the page's scripts ran (``--virtual-time-budget`` lets timers and fetches settle).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.system_tools import system_tool

BLOCKED_NETWORK = ["--proxy-server=127.0.0.1:9"]  # loopback bypasses a proxy by default; the rest goes nowhere
# Chromium's own background traffic (component updates, sync, field trials, QUIC probes) stays off, so a run is
# the page alone and no request can wait on a proxy that never answers.
NO_BACKGROUND = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-dev-shm-usage",  # small /dev/shm in containers crashes renderers
]


def rendered_dom(url: str, profile: Path, budget_ms: int = 15_000, timeout_s: float = 120) -> str:
    """The page's DOM after its scripts ran, in headless Chromium with no network beyond loopback."""
    chromium = system_tool("chromium")
    command = [
        chromium,
        "--headless",
        "--no-sandbox",  # tests may run as root (CI containers), where Chromium's sandbox refuses to start
        "--disable-gpu",
        f"--user-data-dir={profile}",
        *BLOCKED_NETWORK,
        *NO_BACKGROUND,
        f"--virtual-time-budget={budget_ms}",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout
