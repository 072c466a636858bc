"""The access log writes every line it was given, in order, and nothing after stop; its timestamps are datetime's."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np

from serving.access_log import AccessLog, utc_timestamp


def test_lines_are_written_in_order_and_drained_at_stop() -> None:
    out = io.StringIO()
    log = AccessLog(out, interval=3600).start()  # only stop() writes: the drain is what is tested
    assert log.running
    for i in range(1000):
        log.write(f'{{"n": {i}}}')
    assert out.getvalue() == ""  # nothing written on the request path
    log.stop()
    assert not log.running
    assert out.getvalue().splitlines() == [f'{{"n": {i}}}' for i in range(1000)]
    log.stop()  # idempotent
    assert len(out.getvalue().splitlines()) == 1000


def datetime_text(epoch: float) -> str:
    """The reference: what every log line's ``ts`` was before the per-second cache."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_utc_timestamp_gives_datetimes_text_for_every_moment_including_second_and_rounding_edges() -> None:
    rng = np.random.default_rng(19)
    base = 1_796_000_000.0  # December 2026
    edges = [base + k + frac for k in range(3) for frac in (0.0, 0.0004994, 0.0005, 0.9994999, 0.9995, 0.9999996)]
    moments = [*edges, *(base + rng.uniform(0, 400 * 86400, 2000)), 0.0, 951_782_400.5]  # epoch, 2000-02-29
    for epoch in moments:  # in this order the cache sees new seconds, repeats and jumps backwards
        assert utc_timestamp(epoch) == datetime_text(epoch), epoch
    before = datetime.now(UTC).replace(microsecond=0)
    now = datetime.fromisoformat(utc_timestamp())  # without an epoch: the clock's time, in the same format
    assert timedelta(0) <= now - before < timedelta(seconds=60)
