"""Shared routing, rollout and bandit state: one source of truth for every worker and replica.

Concept: externalised control-plane state (C22-C26). Uvicorn workers and service replicas are separate
processes, so a weight, a strategy or a bandit count kept in one process's memory is invisible to the
others and lost on restart. The state lives in the same SQLAlchemy database as the prediction log
(SQLite in WAL mode by default, PostgreSQL by URL), in tables of its own:

- ``routing_state`` (one row): the `RoutingState` as JSON plus its ``version``. Writers use
  *compare-and-swap*: ``UPDATE ... WHERE version = :expected`` succeeds for exactly one of two racing
  writers; the loser re-reads and re-applies its change (`update_routing`), so no update is lost and
  versions strictly increase. Last-writer-wins would silently drop an operator's pause or abort.
- ``rollout_state`` (one row): the rollout state machine as JSON plus a ``revision`` bumped on every write.
- ``bandit_arms`` (one row per arm): reward sums. Feedback arrives from every worker at once, and sums
  are additive, so a reward is one atomic ``SET successes = successes + :r`` upsert, never read-modify-write.

`change_token` is one cheap query whose answer changes whenever any of the three changes, so the API can
poll it and re-read the state only when something moved. The SQL is portable Core; the one dialect-specific
piece, ``INSERT ... ON CONFLICT``, exists with the same meaning on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.redact import redact
from core.schema import ensure_schema
from serving.bandit import DEFAULT_ARMS, BanditState
from serving.rollout import RolloutState
from serving.router import RoutingState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from core.params import BanditParams, RoutingParams

T = TypeVar("T")
metadata = sa.MetaData()
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ROW_ID = 1  # the single-row tables always use this primary key


def _document_table(name: str, counter: str) -> sa.Table:
    """A single-row table: one JSON document plus the integer that compare-and-swap checks."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("state", _JSON, nullable=False),
        sa.Column(counter, sa.Integer, nullable=False),
    )


routing_table = _document_table("routing_state", "version")
rollout_table = _document_table("rollout_state", "revision")
bandit_table = sa.Table(
    "bandit_arms",
    metadata,
    sa.Column("arm", sa.String(64), primary_key=True),
    sa.Column("successes", sa.Float, nullable=False),
    sa.Column("failures", sa.Float, nullable=False),
    sa.Column("updates", sa.Integer, nullable=False),  # only ever grows: the bandit's change counter
)


class StateStoreError(RuntimeError):
    """The store is misconfigured (unsupported or in-memory database URL)."""


class StateConflictError(RuntimeError):
    """Compare-and-swap kept losing to other writers; the state was not changed."""


class ChangeToken(NamedTuple):
    """Compare with ``==``: equal tokens mean nothing was written in between (each part only grows)."""

    routing: int
    rollout: int
    bandit: int


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # busy_timeout first, so even the switch to WAL waits for a lock; in WAL readers never block the writer.
    for pragma in ("busy_timeout=10000", "journal_mode=WAL", "synchronous=NORMAL"):
        dbapi_conn.execute(f"PRAGMA {pragma}")


def _engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise StateStoreError(f"{url!r} is in-memory, so workers cannot share it; use sqlite:////abs/state.db")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    elif backend != "postgresql":
        raise StateStoreError(f"unsupported state store URL {redact(url)!r}; use sqlite:/// or postgresql+psycopg://")
    engine = sa.create_engine(url, pool_pre_ping=True)
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class StateStore:
    """Routing, rollout and bandit state in a shared database, safe across threads and processes."""

    def __init__(self, url: str, defaults: RoutingParams) -> None:
        """Open the database at ``url`` (migrating it to head if needed); ``defaults`` seed absent state."""
        self.defaults = defaults
        self.engine = _engine(url)
        self._insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        ensure_schema(self.engine)  # migrations to head (core.schema), safe when workers start at once

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def _swap(self, counter: sa.Column[int], expected: int, body: dict[str, Any]) -> bool:
        """Compare-and-swap on a single-row table: write iff ``counter`` still equals ``expected``."""
        table = counter.table
        cas = (
            sa.update(table)
            .where(table.c.id == _ROW_ID, counter == expected)
            .values({"state": body, counter.name: expected + 1})
        )
        with self.engine.begin() as conn:
            if conn.execute(cas).rowcount == 1:
                return True
            if expected != 0:
                return False
            # No row yet: the first writer creates it; a racing first writer finds the id taken. SQLAlchemy
            # reports an INSERT's rowcount only when asked to (psycopg gives -1 otherwise).
            first = self._insert(table).values({"id": _ROW_ID, "state": body, counter.name: 1})
            first = first.on_conflict_do_nothing(index_elements=["id"]).execution_options(preserve_rowcount=True)
            return bool(conn.execute(first).rowcount == 1)

    # ---- routing: compare-and-swap on version -------------------------------------------------

    def routing(self) -> RoutingState:
        """The current routing state; the params.yaml defaults (version 0) if none was ever written."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(routing_table).where(routing_table.c.id == _ROW_ID)).one_or_none()
        if row is None:
            return RoutingState.from_params(self.defaults)
        return RoutingState.from_dict({**row.state, "version": row.version})

    def put_routing(self, new: RoutingState, expected_version: int) -> bool:
        """Write ``new`` only if the stored version is still ``expected_version``; False if someone was first.

        Raises:
            ValueError: ``new.version`` is not ``expected_version + 1``.
        """
        if new.version != expected_version + 1:
            raise ValueError(
                f"new.version must be expected_version + 1 = {expected_version + 1}, got {new.version}; "
                "build it with replace(state, version=state.version + 1) or use update_routing"
            )
        body = {k: v for k, v in new.to_dict().items() if k != "version"}  # the column is the truth
        return self._swap(routing_table.c.version, expected_version, body)

    def update_routing(self, fn: Callable[[RoutingState], RoutingState], retries: int = 5) -> RoutingState:
        """Apply ``fn`` to the current state and store the result as the next version; retry on conflicts.

        ``fn`` may be called several times, so it must be pure. The version it sets is ignored: the store
        assigns ``current.version + 1``.

        Raises:
            StateConflictError: Still losing after ``retries`` re-tries.
        """

        def attempt() -> RoutingState | None:
            current = self.routing()
            new = replace(fn(current), version=current.version + 1)
            return new if self.put_routing(new, current.version) else None

        return _retry(attempt, retries, "routing")

    # ---- rollout: one JSON document with a revision -----------------------------------------------

    def _rollout_row(self) -> tuple[RolloutState, int]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(rollout_table).where(rollout_table.c.id == _ROW_ID)).one_or_none()
        return (RolloutState(), 0) if row is None else (RolloutState.from_dict(row.state), row.revision)

    def rollout(self) -> RolloutState:
        """The persisted rollout; an idle one if none was ever written."""
        return self._rollout_row()[0]

    def put_rollout(self, state: RolloutState) -> None:
        """Store ``state`` unconditionally (last writer wins); `update_rollout` when racing writers matter."""
        stmt = self._insert(rollout_table).values(id=_ROW_ID, state=state.to_dict(), revision=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"], set_={"state": stmt.excluded.state, "revision": rollout_table.c.revision + 1}
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def update_rollout(self, fn: Callable[[RolloutState], RolloutState], retries: int = 5) -> RolloutState:
        """Read-modify-write with compare-and-swap on the revision, so a concurrent pause is never lost.

        Raises:
            StateConflictError: Still losing after ``retries`` re-tries.
        """

        def attempt() -> RolloutState | None:
            current, revision = self._rollout_row()
            new = fn(current)
            return new if self._swap(rollout_table.c.revision, revision, new.to_dict()) else None

        return _retry(attempt, retries, "rollout")

    # ---- bandit: atomic increments ---------------------------------------------------------------

    def bandit(self, arms: Sequence[str] = DEFAULT_ARMS, params: BanditParams | None = None) -> BanditState:
        """The bandit over ``arms`` with the stored reward sums (0 for an arm with no feedback yet)."""
        state = BanditState.from_params(params or self.defaults.bandit, arms)
        query = sa.select(bandit_table).where(bandit_table.c.arm.in_(list(arms)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        successes = {**state.successes, **{r.arm: float(r.successes) for r in rows}}
        failures = {**state.failures, **{r.arm: float(r.failures) for r in rows}}
        return replace(state, successes=successes, failures=failures)

    def add_reward(self, arm: str, reward: float) -> None:
        """Add ``reward`` to the arm's successes and ``1 - reward`` to its failures, atomically.

        Raises:
            ValueError: Empty arm name or a reward outside [0, 1].
        """
        if not arm or len(arm) > 64:
            raise ValueError(f"arm must be a name of 1-64 characters, got {arm!r}")
        if isinstance(reward, bool) or not isinstance(reward, int | float) or not 0.0 <= reward <= 1.0:
            raise ValueError(f"reward must be a number in [0, 1] (1 = correct prediction), got {reward!r}")
        t = bandit_table
        # One statement: insert the arm, or, if it exists (even if created a microsecond ago by another
        # worker), increment it in place. The database serialises the increments, so none is lost.
        stmt = self._insert(t).values(arm=arm, successes=float(reward), failures=1.0 - reward, updates=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["arm"],
            set_={
                "successes": t.c.successes + stmt.excluded.successes,
                "failures": t.c.failures + stmt.excluded.failures,
                "updates": t.c.updates + 1,
            },
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def reset_bandit(self) -> None:
        """Forget all feedback (a new experiment). The change counter still grows, so pollers notice."""
        reset = sa.update(bandit_table).values(successes=0.0, failures=0.0, updates=bandit_table.c.updates + 1)
        with self.engine.begin() as conn:
            conn.execute(reset)

    # ---- polling ---------------------------------------------------------------------------------

    def change_token(self) -> ChangeToken:
        """One cheap query: (routing version, rollout revision, bandit update count)."""
        one = sa.select(
            sa.select(routing_table.c.version).where(routing_table.c.id == _ROW_ID).scalar_subquery(),
            sa.select(rollout_table.c.revision).where(rollout_table.c.id == _ROW_ID).scalar_subquery(),
            sa.select(sa.func.sum(bandit_table.c.updates)).scalar_subquery(),
        )
        with self.engine.connect() as conn:
            row = conn.execute(one).one()
        return ChangeToken(*(int(v or 0) for v in row))


def _retry(attempt: Callable[[], T | None], retries: int, what: str) -> T:
    """Run a read-modify-compare-and-swap ``attempt`` until it wins (returns non-None)."""
    for n in range(retries + 1):
        if (result := attempt()) is not None:
            return result
        # Losing means another writer just won: retry soon, with jitter so two losers do not collide again.
        time.sleep(random.uniform(0, min(0.001 * 2**n, 0.05)))  # noqa: S311 -- jitter, not security
    raise StateConflictError(
        f"{what} state changed under us {retries + 1} times in a row; retry later or pass a larger retries"
    )
