"""Our own tables' schema, versioned by Alembic migrations and brought to head once per open.

Concept: data contracts (C31) and schema evolution. Every table of ours lives in one database (the
prediction log, feedback, routing/rollout/bandit state, the retrain guard, monitoring findings), so
one chain of migrations in ``core/migrations/versions`` describes it, and the ``alembic_version``
table says where a database stands. A component that opens the database calls `ensure_schema`
first: the migrations run there, once per engine, never on a write.

Several processes may open the same database at once (two uvicorn workers, a monitor and the API).
`upgrade` holds the database's own lock for the whole upgrade -- ``BEGIN IMMEDIATE`` on SQLite, an
advisory transaction lock on PostgreSQL -- and only then reads the version table, so one process
migrates and the others wait and find it at head. DDL is transactional on both, so a failed upgrade
leaves the database where it was.

A database made before migrations (no ``alembic_version``, some of our tables) is adopted: the
baseline creates only the tables it lacks and ``0002`` adds ``user_key`` only where it is missing
(detected by columns), then the database is stamped at head. A database at a revision this code does
not know (written by a newer release) is refused with `SchemaError`, never changed.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

SCRIPT_LOCATION = "core:migrations"  # a package path: found in a checkout and in an installed wheel alike
LOCK_KEY = 0x6D6C6F7073  # PostgreSQL advisory lock id of our migrations ("mlops" in hex)
OUR_TABLES = (
    "predictions",
    "feedback",
    "routing_state",
    "rollout_state",
    "bandit_arms",
    "retrain_guard",
    "monitor_latest",
    "monitor_history",
)

_migrated: weakref.WeakSet[sa.Engine] = weakref.WeakSet()
# Alembic runs env.py through module-level proxies (alembic.context, alembic.op), so two threads of one
# process must not run it at once; processes are kept apart by the database's lock (`locked`).
_one_thread = threading.RLock()


class SchemaError(RuntimeError):
    """The database's schema cannot be brought to this code's head (newer than the code, or unreadable)."""


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database stands: its revision(s) (empty: never migrated) against the code's head."""

    current: tuple[str, ...]
    head: str
    adopted: bool = False  # it had our tables but no version table (made before migrations)

    @property
    def at_head(self) -> bool:
        return self.current == (self.head,)


def alembic_config(connection: sa.Connection | None = None, target_metadata: object = None) -> Config:
    """A programmatic Alembic config (no alembic.ini): the package's scripts, this connection."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    config.attributes["target_metadata"] = target_metadata
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "core/migrations/versions holds no revision"
    return head


@contextmanager
def locked(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction that holds the database's migration lock; commits on success."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # The write lock now, not at the first write: a second process waits here (busy_timeout)
            # until this upgrade commits, and then reads the version table it wrote.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        yield conn
        conn.commit()


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return {s.revision for s in script.walk_revisions()}


def _current(conn: sa.Connection) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    return tuple(MigrationContext.configure(conn).get_current_heads())


def status(engine: sa.Engine) -> SchemaStatus:
    """The database's revision against the code's head, without changing anything."""
    with engine.connect() as conn:
        return SchemaStatus(_current(conn), head_revision())


def upgrade(engine: sa.Engine) -> SchemaStatus:
    """Bring the database to head under its migration lock; the status found before upgrading.

    Raises:
        SchemaError: the database is at a revision this code does not know (a newer release wrote it).
    """
    from alembic import command

    head = head_revision()
    with _one_thread, locked(engine) as conn:
        current = _current(conn)
        unknown = sorted(set(current) - _known_revisions())
        if unknown:
            raise SchemaError(
                f"the database {engine.url.render_as_string(hide_password=True)} is at schema revision "
                f"{', '.join(unknown)}, which this code does not know (its newest is {head}): it was written by a "
                "newer mlops-lab. Upgrade mlops-lab, or point MLOPS_PREDICTION_LOG_URL at another database"
            )
        adopted = not current and any(sa.inspect(conn).has_table(t) for t in OUR_TABLES)
        if current != (head,):
            command.upgrade(alembic_config(conn), "head")
    found = SchemaStatus(current, head, adopted)
    if not found.at_head:
        log.info(
            "database schema: %s -> %s%s",
            ", ".join(current) or "none",
            head,
            " (tables made before migrations adopted)" if adopted else "",
        )
    return found


def ensure_schema(engine: sa.Engine) -> None:
    """`upgrade` once per engine in this process: later calls cost a set lookup, not a query."""
    with _one_thread:
        if engine in _migrated:
            return
        upgrade(engine)
        _migrated.add(engine)


def new_revision(message: str, target_metadata: Sequence[sa.MetaData], scratch_url: str) -> str:
    """Autogenerate a revision: the code's tables (``target_metadata``) against head, built in a scratch database.

    Returns the path of the new script in ``core/migrations/versions`` (review it before committing).
    """
    from alembic import command

    engine = sa.create_engine(scratch_url)
    try:
        upgrade(engine)
        with _one_thread, locked(engine) as conn:
            script = command.revision(
                alembic_config(conn, list(target_metadata)),
                message=message,
                autogenerate=True,
            )
    finally:
        engine.dispose()
    scripts = script if isinstance(script, list) else [script]
    return ", ".join(str(s.path) for s in scripts if s is not None)
