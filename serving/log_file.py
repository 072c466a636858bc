"""Which file a SQLite prediction log writes to: noticed when it is replaced or deleted under the service.

Concept: disaster recovery (C50), defence in depth behind the state lease (`core.state_lease`). An
open SQLite connection follows the file it opened, not its name: after a restore (or anything else)
moves a new database into place, the service would go on committing rows to the old, unlinked file,
where nobody will ever read them. So the log records the file's identity (device and inode) when it
opens it, and its writer compares it before every batch: one ``os.stat``, microseconds against the
transaction it guards. Then the log reopens on the new file, or keeps its rows queued while there
is no file, and readiness says so.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path


class FileState(StrEnum):
    SAME = "same"
    REPLACED = "replaced"  # another file now has the name: reopen on it
    MISSING = "missing"  # no file has the name: write nothing (a new empty database would hide the loss)


class DatabaseFile:
    """The identity of a database file taken at open, compared with what the name points at now."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.identity = self._current()

    def _current(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def state(self) -> FileState:
        current = self._current()
        if current is None:
            return FileState.MISSING
        return FileState.SAME if current == self.identity else FileState.REPLACED

    def adopt(self) -> None:
        """The file the name points at now is the one we write to (after reopening on it)."""
        self.identity = self._current()
