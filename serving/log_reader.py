"""Reading the prediction log back for monitoring: windows of live traffic, joined with ground truth.

Concept: online model monitoring. Drift checks need the *inputs* that were served (a window by time,
by count or by model version); rollout analysis and A/B statistics need *outcomes*, i.e. predictions
joined with the feedback labels that arrive later. Every filter, join and aggregate here is
SQLAlchemy Core run by the database (SQLite or PostgreSQL alike); pandas only receives the result
and expands the JSON features into one column per feature, ready to compare with training data.
Reading never blocks the writer: SQLite runs in WAL mode, PostgreSQL uses MVCC.

Steered rows are left out of every window (`ANALYSED`): a request forced onto an arm (``X-Force-Arm``,
logged with strategy ``forced``) or pinned to a version (``pinned``) chose its own model, so counting it
would let whoever sends them steer a drift check, an A/B test or a canary analysis. ``steered=True``
reads them as well (debugging).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from serving.prediction_log import feedback_table, make_engine, predictions_table
from serving.router import STEERED

P, F = predictions_table.c, feedback_table.c
# The rows an analysis may count: routed by the strategy (NULL: logged before strategies were recorded).
ANALYSED = sa.or_(P.strategy.is_(None), P.strategy.not_in(STEERED))
PREDICTION_COLUMNS = [c.name for c in predictions_table.c if c.name != "features"]
_CORRECT = sa.case((P.prediction == F.label, sa.true()), else_=sa.false())


@contextmanager
def _connect(engine_or_url: sa.Engine | str) -> Iterator[sa.Connection | None]:
    """A connection, or None when the log has no tables yet (nothing was ever served)."""
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with engine.connect() as conn:
            yield conn if sa.inspect(conn).has_table(predictions_table.name) else None
    finally:
        if engine is not engine_or_url:
            engine.dispose()


def rows_of_request(engine_or_url: sa.Engine | str, request_id: str) -> int:
    """Rows committed under ``request_id`` and its per-row ids (``<id>:<i>``), read with a connection of our own."""
    with _connect(engine_or_url) as conn:
        if conn is None:
            return 0
        of_request = sa.or_(P.request_id == request_id, P.request_id.like(f"{request_id}:%"))
        return int(conn.scalar(sa.select(sa.func.count()).where(of_request)) or 0)


def _select(conn: sa.Connection | None, names: list[str]) -> list[sa.ColumnElement[Any]]:
    """The predictions columns ``names``; one a log from an older release lacks (``user_key``) reads as NULL.

    The writer migrates the database to head when it starts (`core.schema`); a reader never changes
    the file, so an old one nobody served from since must still be readable.
    """
    present = {c["name"] for c in sa.inspect(conn).get_columns(predictions_table.name)} if conn else set(names)
    return [P[c] if c in present else sa.null().label(c) for c in names]


def _utc(ts: datetime) -> datetime:
    """Naive datetimes are taken as UTC, which is what the log stores."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _window(
    stmt: sa.Select[tuple[object, ...]],
    since: datetime | None,
    last_n: int | None,
    model_version: str | None,
    model_name: str | None,
    steered: bool = False,
) -> sa.Select[tuple[object, ...]]:
    if not steered:
        stmt = stmt.where(ANALYSED)
    if since is not None:
        stmt = stmt.where(P.ts >= _utc(since))
    if model_version is not None:
        stmt = stmt.where(P.model_version == str(model_version))
    if model_name is not None:
        stmt = stmt.where(P.model_name == model_name)
    if last_n is not None:
        if last_n < 0:
            raise ValueError(f"last_n must be >= 0, got {last_n}")
        # Newest first to pick the last N, then back to time order for the caller.
        inner = stmt.order_by(P.ts.desc(), P.request_id.desc()).limit(last_n).subquery()
        return sa.select(inner).order_by(inner.c.ts, inner.c.request_id)
    return stmt.order_by(P.ts, P.request_id)


def _frame(rows: sa.CursorResult[tuple[object, ...]] | None, columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows.all() if rows is not None else [], columns=columns)
    for col in ("ts", "label_ts"):
        if col in frame:
            frame[col] = pd.to_datetime(frame[col], utc=True)
    if "latency_ms" in frame:
        frame["latency_ms"] = frame["latency_ms"].astype(float)
    return frame


def confidence(probabilities: object) -> float:
    """A logged row's confidence: its largest class probability (NaN when only a label was asked for)."""
    return max(probabilities.values()) if isinstance(probabilities, dict) and probabilities else float("nan")


def _expand_features(frame: pd.DataFrame) -> pd.DataFrame:
    """One column per feature (prefixed ``feature_`` only if a name clashes with a log column)."""
    features = pd.DataFrame(list(frame.pop("features")), index=frame.index)
    features.columns = [f"feature_{c}" if c in frame.columns else str(c) for c in features.columns]
    return pd.concat([frame, features], axis=1)


def recent_predictions(
    engine_or_url: sa.Engine | str,
    *,
    since: datetime | None = None,
    last_n: int | None = None,
    model_version: str | None = None,
    model_name: str | None = None,
    steered: bool = False,
) -> pd.DataFrame:
    """Served predictions in time order, one column per feature.

    Args:
        engine_or_url: an engine, or the log's SQLAlchemy URL (``Settings.prediction_log_uri``).
        since: only predictions at or after this time (naive = UTC).
        last_n: only the newest N (after the other filters).
        model_version: only this registry version; model_name: only this registered model.
        steered: also the forced and pinned requests (left out by default: see the module's docstring).
    """
    columns = [*PREDICTION_COLUMNS, "features"]
    with _connect(engine_or_url) as conn:
        stmt = _window(sa.select(*_select(conn, columns)), since, last_n, model_version, model_name, steered)
        return _expand_features(_frame(conn.execute(stmt) if conn else None, columns))


def labelled_window(
    engine_or_url: sa.Engine | str,
    *,
    since: datetime | None = None,
    last_n: int | None = None,
    model_version: str | None = None,
    model_name: str | None = None,
    steered: bool = False,
) -> pd.DataFrame:
    """Predictions that have a feedback label: ``prediction``, ``label``, ``correct``, ``label_ts``.

    Same filters as :func:`recent_predictions`; ``last_n`` counts labelled predictions only.
    """
    columns = [*PREDICTION_COLUMNS, "features", "label", "label_ts", "correct"]
    with _connect(engine_or_url) as conn:
        stmt = sa.select(
            *_select(conn, [*PREDICTION_COLUMNS, "features"]),
            F.label,
            F.ts.label("label_ts"),
            _CORRECT.label("correct"),
        ).join_from(predictions_table, feedback_table, P.request_id == F.request_id)
        frame = _frame(
            conn.execute(_window(stmt, since, last_n, model_version, model_name, steered)) if conn else None, columns
        )
    frame["correct"] = frame["correct"].astype(bool)
    return _expand_features(frame)


def accuracy_by_version(
    engine_or_url: sa.Engine | str, *, since: datetime | None = None, model_name: str | None = None
) -> pd.DataFrame:
    """Online accuracy per model version from feedback: ``n_labelled``, ``n_correct``, ``accuracy``."""
    n_correct = sa.func.sum(sa.case((P.prediction == F.label, 1), else_=0))
    stmt = (
        sa.select(
            P.model_name,
            P.model_version,
            sa.func.count().label("n_labelled"),
            n_correct.label("n_correct"),
            (sa.cast(n_correct, sa.Float) / sa.func.count()).label("accuracy"),
        )
        .join_from(predictions_table, feedback_table, P.request_id == F.request_id)
        .where(ANALYSED)
        .group_by(P.model_name, P.model_version)
        .order_by(P.model_name, P.model_version)
    )
    if since is not None:
        stmt = stmt.where(P.ts >= _utc(since))
    if model_name is not None:
        stmt = stmt.where(P.model_name == model_name)
    columns = ["model_name", "model_version", "n_labelled", "n_correct", "accuracy"]
    with _connect(engine_or_url) as conn:
        frame = _frame(conn.execute(stmt) if conn else None, columns)
    return frame.astype({"n_labelled": int, "n_correct": int, "accuracy": float})
