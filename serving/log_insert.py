"""The prediction log's SQLite insert path: table rows as tuples, written in multi-row statements.

Concept: prediction logging (C38) that does not tax the request path. The log's writer thread
shares the interpreter lock with the event loop, so every microsecond of Python it runs per row is
taken from serving once the process is busy. The general path (``ServedRows.rows()`` -> dicts ->
``conn.execute(stmt, rows)``) builds a dict per row and SQLAlchemy processes each before SQLite sees
it, and the driver's ``executemany`` releases and re-takes the lock around every row's
``sqlite3_step``, a thread switch per row under load. `DriverInsert` builds each row as a tuple
straight from a `ServedRows`' arrays (one timestamp conversion per request) and sends
``ROWS_PER_STATEMENT`` rows per ``INSERT ... VALUES (...), (...)``: one lock release per statement.

Nothing about what is stored changes: the SQL is the statement SQLAlchemy compiles for the table,
and every value goes through the bind processor SQLAlchemy itself would call (JSON columns through
the engine's serializer, SQLite DATETIME to its text format); a unit test compares the stored rows
byte for byte with ``conn.execute``. Only for SQLite (positional parameters); PostgreSQL keeps the
general path.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from serving.log_schema import LogItem, ServedRows, insert_ignoring_duplicates, predictions_table

# The column order `DriverInsert.served` builds tuples in; checked against the compiled statement.
COLUMNS = (
    "request_id", "ts", "model_name", "model_version", "arm", "strategy",
    "features", "prediction", "probabilities", "latency_ms", "status", "user_key", "sensitive_group",
    "entity_id", "features_at",
)  # fmt: skip
Processor = Callable[[Any], Any] | None


class DriverInsert:
    """Tuples for the predictions table, and the multi-row statements that insert them."""

    ROWS_PER_STATEMENT = 64  # 64 x 15 parameters stays under SQLite's oldest default limit of 999

    def __init__(self, sql: str, processors: Sequence[Processor]) -> None:
        start = sql.index(" VALUES (") + len(" VALUES ")
        end = sql.index(")", start) + 1
        self.head, self.group, self.tail = sql[:start], sql[start:end], sql[end:]  # "INSERT ... VALUES ", "(?, ...)"
        self.processors = list(processors)
        self._ts, encode = processors[COLUMNS.index("ts")], processors[COLUMNS.index("features")]
        self._at = processors[COLUMNS.index("features_at")]  # the same DATETIME processor as ``ts``
        if encode is None:
            raise ValueError("the JSON columns need SQLAlchemy's JSON bind processor; use the general insert path")
        self._json: Callable[[Any], Any] = encode
        self._sql: dict[int, str] = {}

    @classmethod
    def for_engine(cls, engine: sa.Engine) -> DriverInsert | None:
        """The fast path for a SQLite engine, else None (the caller keeps ``conn.execute``)."""
        compiled = insert_ignoring_duplicates(engine, predictions_table).compile(dialect=engine.dialect)
        if engine.dialect.name != "sqlite" or not compiled.positional or tuple(compiled.positiontup or ()) != COLUMNS:
            return None
        dialect = engine.dialect
        types = [predictions_table.c[name].type.dialect_impl(dialect) for name in COLUMNS]
        return cls(compiled.string, [t.bind_processor(dialect) for t in types])

    def rows(self, items: Sequence[LogItem], reject: Callable[[str], None]) -> list[tuple[Any, ...]]:
        """All items' table rows as tuples; a row whose value the JSON encoder refuses goes to ``reject``.

        Called inside the writer; ``reject`` is called from an ``except`` block (to log the cause).
        """
        out: list[tuple[Any, ...]] = []
        for item in items:
            try:
                out += self.served(item) if type(item) is ServedRows else [self.row(r) for r in item.rows()]
            except (TypeError, ValueError):  # find the row(s) at fault, keep the rest
                for record in item.rows():
                    try:
                        out.append(self.row(record))
                    except (TypeError, ValueError):
                        reject(record["request_id"])
        return out

    def row(self, record: dict[str, Any]) -> tuple[Any, ...]:
        """One table row given as a dict (``PredictionRecord.rows()``), through the bind processors."""
        return tuple(
            record[name] if proc is None else proc(record[name])
            for name, proc in zip(COLUMNS, self.processors, strict=True)
        )

    def served(self, item: ServedRows) -> list[tuple[Any, ...]]:
        """The rows of one request, as ``ServedRows.rows()`` defines them (NaN -> null), straight to tuples."""
        n, names, encode = len(item.request_ids), list(item.feature_names), self._json
        ts = self._ts(item.ts) if self._ts is not None else item.ts  # one conversion for all rows of the request
        labels: Sequence[str | None] = item.predictions if item.predictions is not None else [None] * n
        if item.probabilities is not None:
            probabilities = [encode(dict(zip(item.classes, p, strict=True))) for p in item.probabilities.tolist()]
        else:
            probabilities = [encode(None)] * n
        matrix = item.values.tolist()
        groups: Sequence[str | None] = item.groups if item.groups is not None else [None] * n
        entities: Sequence[str | None] = item.entity_ids if item.entity_ids is not None else [None] * n
        measured: list[Any] = [None] * n
        if item.features_at is not None:
            at = self._at
            measured = [at(t) if at is not None else t for t in item.features_at]
        rows = zip(item.request_ids, matrix, labels, probabilities, groups, entities, measured, strict=True)
        return [
            (rid, ts, item.model_name, item.model_version, item.arm, item.strategy,
             encode({f: (v if v == v else None) for f, v in zip(names, values, strict=True)}),
             label, proba, item.latency_ms, item.status, item.user_key, group, entity, at_)
            for rid, values, label, proba, group, entity, at_ in rows
        ]  # fmt: skip

    def sql(self, n: int) -> str:
        """The statement inserting ``n`` rows (cached; the driver caches it prepared as well)."""
        if (text := self._sql.get(n)) is None:
            text = self._sql[n] = self.head + ", ".join([self.group] * n) + self.tail
        return text

    def statements(self, rows: Sequence[tuple[Any, ...]]) -> list[tuple[str, tuple[Any, ...]]]:
        """(SQL, flat parameters) per chunk of at most ``ROWS_PER_STATEMENT`` rows."""
        step = self.ROWS_PER_STATEMENT
        return [
            (self.sql(len(chunk)), tuple(itertools.chain.from_iterable(chunk)))
            for chunk in (rows[i : i + step] for i in range(0, len(rows), step))
        ]
