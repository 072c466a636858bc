"""A fresh demo state per test module, for the demo tests that need nothing more.

Test modules whose demos share more (a champion trained once, routing left behind for the next demo)
define their own ``ctx``, which takes precedence over this one.
"""

from __future__ import annotations

import pytest

from core.context import LabContext


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory, make_settings, demo_context) -> LabContext:
    """A fresh state for the module; serving re-reads aliases and state once an hour, never mid-demo."""
    settings = make_settings(tmp_path_factory.mktemp("demo-state") / "state", poll_interval_s=3600)
    return demo_context(settings)
