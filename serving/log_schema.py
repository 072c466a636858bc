"""The prediction log's schema: tables, record types, and an engine for SQLite or PostgreSQL.

Concept: the data contract of online monitoring. Predictions and feedback are two tables joined by
request id (the primary key of both, so every write can be made idempotent with ON CONFLICT DO
NOTHING). The same SQLAlchemy Core definitions serve SQLite (a file in WAL mode, the default) and
PostgreSQL (JSONB columns), chosen by URL alone. They are what the code reads and writes; the
database is built and changed by the Alembic migrations in ``core/migrations`` (`core.schema`), and a
test holds the two equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.redact import redact

metadata = sa.MetaData()
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

predictions_table = sa.Table(
    "predictions",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False, index=True),
    sa.Column("arm", sa.String(64)),
    sa.Column("strategy", sa.String(64)),
    sa.Column("features", _JSON, nullable=False),
    sa.Column("prediction", sa.String(200)),
    sa.Column("probabilities", _JSON),
    sa.Column("latency_ms", sa.Float),
    sa.Column("status", sa.String(32), nullable=False),
    # Added after the first release by migration 0002 (core/migrations/versions); NULL in older rows.
    sa.Column("user_key", sa.String(32)),  # keyed hash of X-User-Id (serving.credentials.UserKeys); None without
    # Migration 0003: the row's dataset.group_column value (e.g. a site), sent with the request and never scored;
    # what the monitoring fairness check compares (C58). NULL when the request named no group.
    sa.Column("sensitive_group", sa.String(64)),
    # Migration 0004: for a row sent as an entity id (`serving.entity_features`), the id and when the features
    # read from the online store were measured; ``features`` holds those values. NULL for rows sent as features.
    sa.Column("entity_id", sa.String(64)),
    sa.Column("features_at", sa.DateTime(timezone=True)),
)
feedback_table = sa.Table(
    "feedback",
    metadata,
    sa.Column("request_id", sa.String(64), sa.ForeignKey("predictions.request_id"), primary_key=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PredictionRecord:
    """One served prediction (or a failed request, with ``status`` != "ok" and no prediction)."""

    request_id: str
    model_name: str
    model_version: str
    features: dict[str, Any]
    prediction: str | None
    probabilities: dict[str, float] | None = None
    arm: str | None = None
    strategy: str | None = None
    latency_ms: float | None = None
    status: str = "ok"
    ts: datetime = field(default_factory=utc_now)
    user_key: str | None = None
    sensitive_group: str | None = None
    entity_id: str | None = None
    features_at: datetime | None = None

    def __len__(self) -> int:
        return 1

    def rows(self) -> list[dict[str, Any]]:
        return [vars(self)]


@dataclass(frozen=True)
class ServedRows:
    """All rows of one request in compact form (arrays, not per-row objects).

    The request path enqueues this one object; the log's writer thread expands it into table rows,
    so a 10,000-row batch costs the request a queue put, not 10,000 records. ``predictions`` is
    None for a failed request (the rows are logged with ``status`` "error" and no prediction).
    """

    request_ids: Sequence[str]
    model_name: str
    model_version: str
    feature_names: Sequence[str]
    values: np.ndarray  # rows x features in contract order; NaN = missing
    predictions: Sequence[str] | None
    probabilities: np.ndarray | None  # rows x classes
    classes: Sequence[str]
    arm: str | None
    strategy: str | None
    latency_ms: float | None
    status: str = "ok"
    ts: datetime = field(default_factory=utc_now)
    user_key: str | None = None  # one request, one user
    groups: Sequence[str | None] | None = None  # per row: its dataset.group_column value (None: no group)
    entity_ids: Sequence[str] | None = None  # per row, for rows sent as an entity id (`serving.entity_features`)
    features_at: Sequence[datetime] | None = None  # per row: when those rows' features were measured

    def __len__(self) -> int:
        return len(self.request_ids)

    def rows(self) -> list[dict[str, Any]]:
        n, names = len(self.request_ids), list(self.feature_names)
        features = [
            {f: (v if v == v else None) for f, v in zip(names, row, strict=True)} for row in self.values.tolist()
        ]
        predictions: Sequence[str | None] = self.predictions if self.predictions is not None else [None] * n
        probabilities: list[dict[str, float] | None] = (
            [dict(zip(self.classes, row, strict=True)) for row in self.probabilities.tolist()]
            if self.probabilities is not None
            else [None] * n
        )
        groups: Sequence[str | None] = self.groups if self.groups is not None else [None] * n
        entities: Sequence[str | None] = self.entity_ids if self.entity_ids is not None else [None] * n
        measured: Sequence[datetime | None] = self.features_at if self.features_at is not None else [None] * n
        shared = {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "arm": self.arm,
            "strategy": self.strategy,
            "latency_ms": self.latency_ms,
            "status": self.status,
            "ts": self.ts,
            "user_key": self.user_key,
        }
        rows = zip(self.request_ids, features, predictions, probabilities, groups, entities, measured, strict=True)
        return [
            {"request_id": rid, "features": feats, "prediction": label, "probabilities": proba,
             "sensitive_group": group, "entity_id": entity, "features_at": at, **shared}
            for rid, feats, label, proba, group, entity, at in rows
        ]  # fmt: skip


LogItem = PredictionRecord | ServedRows


@dataclass(frozen=True)
class FeedbackRecord:
    """The ground-truth label for a served request."""

    request_id: str
    label: str
    ts: datetime = field(default_factory=utc_now)


class FeedbackStatus(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # the same label again: a no-op
    CONFLICT = "conflict"  # a different label for a request that already has one: not overwritten
    UNKNOWN_REQUEST = "unknown_request"


@dataclass(frozen=True)
class FeedbackResult:
    status: FeedbackStatus
    request_id: str
    label: str
    existing_label: str | None = None

    @property
    def message(self) -> str:
        return {
            FeedbackStatus.RECORDED: f"label {self.label!r} recorded for request {self.request_id}",
            FeedbackStatus.DUPLICATE: f"request {self.request_id} already has label {self.label!r}; nothing changed",
            FeedbackStatus.CONFLICT: f"request {self.request_id} already has label {self.existing_label!r}; "
            f"{self.label!r} was not stored (labels are write-once)",
            FeedbackStatus.UNKNOWN_REQUEST: f"unknown request id {self.request_id!r}: no prediction logged with it "
            "(check the id from the predict response; one served by another worker within the last second "
            "may not be written yet, so retry)",
        }[self.status]


@dataclass(frozen=True)
class LogStats:
    enqueued: int
    written: int  # rows committed (a retried duplicate counts, it is already stored)
    refused: int  # rows not accepted because the log stayed full (their request got a 503, nothing was served)
    failed: int  # rows the database rejected (logged with their request id)
    dropped: int  # rows given up at shutdown because the database still failed (disk full, down); logged
    queued: int  # rows accepted but not yet written
    write_error: str | None = None  # why writes fail right now (e.g. disk full); None while they succeed


class PredictionLogError(RuntimeError):
    """The log is misconfigured or used outside its lifecycle."""


class FeedbackBusyError(RuntimeError):
    """Too many feedback requests are already waiting for predictions not yet stored: retry shortly."""


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy scalars and arrays orjson does not take natively
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable; log plain floats/str in features")


def to_json(obj: Any) -> str:
    """JSON for the JSON/JSONB columns: orjson, about ten times faster than the standard library on the
    writer thread (which shares the interpreter with the request path); numpy values are plain numbers."""
    return orjson.dumps(obj, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA busy_timeout=10000")  # wait for the write lock instead of failing at once
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL-safe; survives process crashes
    cursor.close()


def make_engine(url: str) -> sa.Engine:
    """An engine for the prediction log: SQLite (file, WAL) or PostgreSQL, chosen by URL."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise PredictionLogError(f"{url!r} is in-memory; use a file, e.g. sqlite:////abs/predictions.db")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    elif parsed.get_backend_name() != "postgresql":
        raise PredictionLogError(
            f"unsupported prediction log URL {redact(url)!r}; use sqlite:/// or postgresql+psycopg://"
        )
    engine = sa.create_engine(url, json_serializer=to_json, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def insert_ignoring_duplicates(engine: sa.Engine, table: sa.Table) -> Any:
    """``INSERT ... ON CONFLICT (request_id) DO NOTHING`` in the engine's dialect."""
    dialect_insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    # preserve_rowcount: with SQLAlchemy 2.1 + psycopg an INSERT reports rowcount -1 unless asked to keep it,
    # and record_feedback reads the rowcount to tell a first label from a duplicate.
    stmt = dialect_insert(table).on_conflict_do_nothing(index_elements=["request_id"])
    return stmt.execution_options(preserve_rowcount=True)
