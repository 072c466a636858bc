"""Prefect's console records about a refusal the command explains are dropped; everything else stays."""

from __future__ import annotations

import io
import logging
import sys

from core.quiet_refusals import quiet_refusals


class Refused(ValueError):
    pass


def _log(name: str, exc: BaseException | None, message: str) -> None:
    logger = logging.getLogger(name)
    if exc is None:
        logger.error(message)
        return
    try:
        raise exc
    except BaseException:
        logger.error(message, exc_info=sys.exc_info())


def test_only_prefect_records_about_the_named_refusals_are_dropped_and_only_inside_the_block() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with quiet_refusals(Refused):
            _log("prefect.task_runs", Refused("bad rows"), "Task run failed")  # dropped
            _log("prefect.flow_runs", None, "Finished in state Failed('... Refused: bad rows')")  # dropped
            _log("prefect.task_runs", KeyError("bug"), "Task run failed: a bug")  # a bug keeps its traceback
            _log("our.module", Refused("ours"), "not Prefect's")  # other loggers are untouched
        _log("prefect.task_runs", Refused("after"), "after the block")  # the filter is gone
    finally:
        root.removeHandler(handler)
    out = stream.getvalue()
    assert "Task run failed\n" not in out
    assert "Finished in state" not in out
    assert "Task run failed: a bug" in out
    assert "KeyError: 'bug'" in out
    assert "not Prefect's" in out
    assert "after the block" in out
