"""Helpers of the stream-scoring tests: a bounded wait on a condition, and reading a worker's /metrics."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable

DEADLINE_S = 120.0  # as the tests' own deadline: a loaded CI machine is slow


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # a bounded poll on the condition itself, never a fixed sleep
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:g} s"
        time.sleep(0.05)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return answer.read().decode()


def sample(text: str, series: str) -> float | None:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None
