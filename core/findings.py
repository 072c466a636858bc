"""What a monitoring check found, and where the latest findings are kept for everyone to read.

Concept: monitoring as decisions (C32-C37). Every check -- data drift, prediction drift, concept drift,
attribution drift, anomalies on live metrics -- answers in the same shape, a `Finding`: did it fire,
its headline score against its threshold, a one-line summary a person can read, and the paths of any
report it wrote. ``inconclusive`` is a first-class status: a window too small to judge is never
reported as "no drift".

The latest finding per check lives in the shared database (the same one as the prediction log and
the routing state), so the retraining decision, the CLI and every API replica's ``/metrics`` read the
same answer; a history table keeps every check for audits and dashboards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.schema import ensure_schema

Status = Literal["ok", "fired", "inconclusive"]
CHECKS = ("data_drift", "prediction_drift", "concept_drift", "attribution_drift", "anomaly", "fairness")


@dataclass(frozen=True)
class Finding:
    """One check's answer on one window.

    ``score`` is the check's headline number (share of drifted features, accuracy drop, attribution
    drift score, ...) compared with ``threshold``; ``details`` holds per-feature or per-version figures
    (JSON-serialisable); ``reports`` maps a report name ("html", "json") to its file path.
    """

    check: str
    status: Status
    score: float | None
    threshold: float | None
    summary: str
    rows: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    ts: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def fired(self) -> bool:
        return self.status == "fired"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


metadata = sa.MetaData()
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
latest_table = sa.Table(
    "monitor_latest",
    metadata,
    sa.Column("check_name", sa.String(64), primary_key=True),
    sa.Column("finding", _JSON, nullable=False),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
)
history_table = sa.Table(
    "monitor_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("check_name", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("finding", _JSON, nullable=False),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
)


def ensure_tables(engine: sa.Engine) -> None:
    """The findings tables exist: the database is at the migrations' head (`core.schema`)."""
    ensure_schema(engine)


def save_findings(engine: sa.Engine, findings: Sequence[Finding], now: datetime | None = None) -> None:
    """Record findings: each replaces its check's latest row and is appended to the history, in one transaction."""
    if not findings:
        return
    ensure_tables(engine)
    ts = now or datetime.now(UTC)
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with engine.begin() as conn:
        for f in findings:
            body = f.to_dict()
            stmt = insert(latest_table).values(check_name=f.check, finding=body, ts=ts)
            conn.execute(stmt.on_conflict_do_update(index_elements=["check_name"], set_={"finding": body, "ts": ts}))
            conn.execute(sa.insert(history_table).values(check_name=f.check, status=f.status, finding=body, ts=ts))


def latest_findings(engine: sa.Engine) -> dict[str, Finding]:
    """The newest finding of every check that ever ran (empty before the first check)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(latest_table.name):
            return {}
        rows = conn.execute(sa.select(latest_table.c.check_name, latest_table.c.finding)).all()
    return {name: Finding.from_dict(body) for name, body in rows}


def finding_history(engine: sa.Engine, check: str | None = None, limit: int = 100) -> list[Finding]:
    """Past findings, newest first (optionally of one check)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(history_table.name):
            return []
        stmt = sa.select(history_table.c.finding).order_by(history_table.c.id.desc()).limit(limit)
        if check is not None:
            stmt = stmt.where(history_table.c.check_name == check)
        return [Finding.from_dict(body) for (body,) in conn.execute(stmt)]


def finding_runs(engine: sa.Engine, limit: int = 30) -> list[tuple[datetime, list[Finding]]]:
    """The last ``limit`` monitoring runs, oldest first: each run's time and the findings it saved together.

    A run is one `save_findings` call: its findings share the history row's ``ts``.
    """
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(history_table.name):
            return []
        times = (
            sa.select(history_table.c.ts).group_by(history_table.c.ts).order_by(history_table.c.ts.desc()).limit(limit)
        )
        stmt = (
            sa.select(history_table.c.ts, history_table.c.finding)
            .where(history_table.c.ts.in_(times.scalar_subquery()))
            .order_by(history_table.c.ts, history_table.c.id)
        )
        runs: dict[datetime, list[Finding]] = {}
        for ts, body in conn.execute(stmt):
            runs.setdefault(ts, []).append(Finding.from_dict(body))
    return list(runs.items())
