"""The access log writes every line it was given, in order, and nothing after stop."""

from __future__ import annotations

import io
import logging

from serving.access_log import ACCESS_LOGGER, AccessLog


def test_lines_are_written_in_order_and_drained_at_stop() -> None:
    out = io.StringIO()
    log = AccessLog(out, interval=3600).start()  # only stop() writes: the drain is what is tested
    logger = logging.getLogger(ACCESS_LOGGER)
    for i in range(1000):
        logger.info('{"n": %d}', i)
    assert out.getvalue() == ""  # nothing written on the request path
    log.stop()
    assert out.getvalue().splitlines() == [f'{{"n": {i}}}' for i in range(1000)]
    logger.info('{"n": "late"}')
    log.stop()
    assert "late" not in out.getvalue()
