"""A lock and a cooldown for automatic retraining, kept in the shared database.

Concept: retraining triggers (C37) without retrain storms. Drift does not go away when a retrain
starts: the next scheduled check, or a second monitor replica, sees the same drifted window and
would start another retrain, and another. Two guards stop that:

- a **lease** (a lock with an expiry): only one retrain runs at a time across every process and
  machine; a retrain that crashes without releasing it blocks others only until ``lock_ttl_s``;
- a **cooldown**: after a retrain *starts*, no other may start for ``cooldown_minutes``, whatever
  its outcome -- a retrain that failed on bad data would otherwise be retried at every check.

Both are one conditional ``UPDATE`` on a single row, so the database decides races: of two monitors
asking at once, exactly one gets ``acquired``. Times are stored as epoch seconds (portable between
SQLite and PostgreSQL, no time-zone surprises).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.schema import ensure_schema

metadata = sa.MetaData()
guard_table = sa.Table(
    "retrain_guard",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("holder", sa.String(64)),  # the running retrain's token, NULL when free
    sa.Column("lease_until", sa.Float),  # epoch seconds; an expired lease counts as free
    sa.Column("last_started", sa.Float),
    sa.Column("last_finished", sa.Float),
    sa.Column("last_result", sa.String(500)),
    sa.Column("starts", sa.Integer, nullable=False),  # retrains ever started (only grows)
)
_ROW = 1


@dataclass(frozen=True)
class GuardDecision:
    """Whether a retrain may start now; ``token`` releases the lease afterwards."""

    acquired: bool
    reason: str
    token: str | None = None


def _ensure_row(engine: sa.Engine) -> None:
    ensure_schema(engine)  # the table comes from the migrations (core.schema), once per engine
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with engine.begin() as conn:
        conn.execute(insert(guard_table).values(id=_ROW, starts=0).on_conflict_do_nothing(index_elements=["id"]))


def guard_state(engine: sa.Engine) -> dict[str, Any]:
    """The guard row as a dict (holder, lease_until, last_started, last_finished, last_result, starts)."""
    _ensure_row(engine)
    return _read(engine)


def _read(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(guard_table).where(guard_table.c.id == _ROW)).mappings().one())


def try_acquire(engine: sa.Engine, *, now: float, cooldown_s: float, ttl_s: float) -> GuardDecision:
    """Take the retrain lease if nobody holds it and the cooldown has passed.

    Args:
        now: the current time in epoch seconds (passed in, so tests control the clock).
        cooldown_s: minimum seconds between two retrain starts.
        ttl_s: how long the lease lasts if it is never released (a crashed retrain).
    """
    _ensure_row(engine)
    token = uuid.uuid4().hex
    g = guard_table.c
    free = sa.or_(g.holder.is_(None), g.lease_until < now)
    cooled = sa.or_(g.last_started.is_(None), g.last_started <= now - cooldown_s)
    with engine.begin() as conn:
        done = conn.execute(
            sa.update(guard_table)
            .where(g.id == _ROW, free, cooled)
            .values(holder=token, lease_until=now + ttl_s, last_started=now, starts=g.starts + 1)
        ).rowcount
    if done == 1:
        return GuardDecision(True, "retrain lease acquired", token)
    state = _read(engine)
    if state["holder"] is not None and (state["lease_until"] or 0.0) >= now:
        return GuardDecision(False, f"another retrain is running (lease for {state['lease_until'] - now:.0f} s more)")
    wait = (state["last_started"] or 0.0) + cooldown_s - now
    return GuardDecision(
        False,
        f"cooldown: the last retrain started {now - state['last_started']:.0f} s ago, "
        f"next one allowed in {max(wait, 0.0):.0f} s",
    )


def release(engine: sa.Engine, token: str, result: str, *, now: float) -> bool:
    """Give the lease back and record the outcome; False if the lease had expired and was taken over."""
    with engine.begin() as conn:
        done = conn.execute(
            sa.update(guard_table)
            .where(guard_table.c.id == _ROW, guard_table.c.holder == token)
            .values(holder=None, lease_until=None, last_finished=now, last_result=result[:500])
        ).rowcount
    return done == 1


def end_cooldown(engine: sa.Engine, *, now: float) -> bool:
    """End the cooldown now, so the next trigger may retrain at once; False while a retrain holds the lease.

    An operator's action (a workshop lab starting over), never the monitor's: the cooldown is what stops
    retrain storms. The count of starts and the last result stay as they are.
    """
    _ensure_row(engine)
    g = guard_table.c
    free = sa.or_(g.holder.is_(None), g.lease_until < now)
    with engine.begin() as conn:
        done = conn.execute(sa.update(guard_table).where(g.id == _ROW, free).values(last_started=None)).rowcount
    return done == 1
