"""A full disk for one SQLite file, made by SQLite itself: for tests of the prediction log's fault handling.

``PRAGMA max_page_count`` on every connection checked out to the file caps the database's size; SQLite then
fails writes with SQLITE_FULL ("database or disk is full"), the very error a full disk gives. Raising the
cap is space freeing up. Only connections SQLAlchemy's pools hand out are capped (the log's own).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

NO_LIMIT = 1_073_741_823  # SQLite's default max_page_count


class DiskLimit:
    """Caps the pages of one SQLite file on every pool checkout; ``pages=None`` lifts the cap."""

    def __init__(self, path: Path) -> None:
        self.path, self.pages = str(path.resolve()), None

    def __call__(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_conn.execute("PRAGMA database_list").fetchone()[2] == self.path:
            dbapi_conn.execute(f"PRAGMA max_page_count = {self.pages or NO_LIMIT}")

    def pages_now(self) -> int:
        with sqlite3.connect(self.path) as conn:
            return int(conn.execute("PRAGMA page_count").fetchone()[0])


@contextmanager
def full_disk(path: Path) -> Iterator[DiskLimit]:
    """A `DiskLimit` on ``path`` for the duration of the block (no cap until ``pages`` is set)."""
    limit = DiskLimit(path)
    sa.event.listen(sa.pool.Pool, "checkout", limit)
    try:
        yield limit
    finally:
        sa.event.remove(sa.pool.Pool, "checkout", limit)
