"""The access log writes every line it was given, in order, and nothing after stop."""

from __future__ import annotations

import io

from serving.access_log import AccessLog


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
