"""The ``streaming`` demo (C63) runs on a fresh state with a real redis-server and shows what it claims.

The numbers are read from the narration and checked against each other and against the demo's own prediction
log: what w1 held when it was killed is what w2 claimed, the log holds every clean message once, the dead-letter
stream holds the poison, and w2's /metrics ends at lag 0 and pending 0.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.context import LabContext
from lab.demos import MissingPrerequisiteError
from lab.demos.streaming import EVENTS, POISON
from tests.system_tools import system_tool

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def number(pattern: str, out: str) -> int:
    found = re.search(pattern, out)
    assert found is not None, f"{pattern!r} not in the narration:\n{out}"
    return int(found.group(1).replace(",", ""))


def metric(out: str, series: str) -> int:
    return number(rf"{re.escape(series)}\s*│\s*(\d+)", out)


def test_streaming_demo_kills_a_worker_its_messages_are_claimed_and_every_message_is_logged_once(
    run_demo, ctx: LabContext
) -> None:
    system_tool("redis-server")
    out = run_demo("streaming", ctx, width=200)
    written = number(r"XADD x ([\d,]+)", out)
    assert written == EVENTS + POISON
    held = number(r"w1 killed \(exit -9\) holding (\d+) messages", out)
    assert held > 0, "w1 was killed with messages in hand"
    claimed = number(r"w2 claimed (\d+) messages", out)
    assert claimed >= held, "everything w1 held was claimed (and perhaps more, if w2 was slow)"
    assert "w1's pending list now 0" in out
    assert metric(out, 'mlops_stream_messages_total{outcome="claimed"}') == claimed
    assert metric(out, "mlops_stream_lag_messages") == 0
    assert metric(out, "mlops_stream_pending_messages") == 0
    rows, clean, distinct = (
        int(x.replace(",", ""))
        for x in re.search(r"([\d,]+) rows for ([\d,]+) clean messages, ([\d,]+) distinct ids", out).groups()  # type: ignore[union-attr]
    )
    assert rows == clean == distinct == written - POISON
    assert "each logged once: True" in out
    assert number(r"mlops:features:dead: (\d+) dead letters", out) == POISON
    for reason in ("payload is not JSON", "petal_width: Field required", "sepal_length: Input should be less"):
        assert reason in out
    # The demo's own prediction log, read directly: the same rows, one per message id.
    engine = sa.create_engine(ctx.settings.prediction_log_uri)
    try:
        with engine.connect() as conn:
            ids = list(conn.scalars(sa.text("SELECT request_id FROM predictions")))
    finally:
        engine.dispose()
    assert len(ids) == len(set(ids)) == EVENTS


def test_without_redis_server_the_demo_stops_at_once_naming_the_install_command(
    run_demo, ctx: LabContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no redis-server
    with pytest.raises(MissingPrerequisiteError, match=r"apt-get install .*redis-server"):
        run_demo("streaming", ctx)
