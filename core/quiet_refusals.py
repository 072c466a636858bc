"""A refusal the command explains itself is not also printed by Prefect as a traceback.

When a flow task raises an expected refusal (invalid data, a missing file), Prefect's engine logs it
three times on the console, each with the exception's whole message and a traceback, before the
command prints its own clear explanation: 70-odd lines for an 8-line answer. `quiet_refusals` puts
a filter on the console handlers for the duration of a command: records about the named exception
types are dropped from the console only. Prefect's API handler is untouched, so the flow run in the
Prefect UI still shows the failure with its traceback, and any other exception is printed as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class _DropRefusals(logging.Filter):
    def __init__(self, refusals: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.refusals = refusals
        self.names = tuple(cls.__name__ for cls in refusals)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("prefect"):
            return True
        if record.exc_info and record.exc_info[1] is not None:
            return not isinstance(record.exc_info[1], self.refusals)
        message = record.getMessage()  # "Finished in state Failed('... DataValidationError: ...')" has no exc_info
        return not any(f"{name}(" in message or f"{name}:" in message for name in self.names)


@contextmanager
def quiet_refusals(*refusals: type[BaseException]) -> Iterator[None]:
    """Within the block, the root logger's handlers (the console) skip Prefect's records about ``refusals``."""
    drop = _DropRefusals(refusals)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(drop)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(drop)
