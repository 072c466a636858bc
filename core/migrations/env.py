"""Alembic's environment for our own tables: it runs on the connection `core.schema` hands it.

`core.schema` opens that connection and takes the database's lock (SQLite ``BEGIN IMMEDIATE``,
PostgreSQL an advisory transaction lock) before Alembic reads the version table, so of several
processes starting at once one migrates and the others find the database at head. Running
``alembic`` on its own is not supported: use ``mlops-lab db upgrade`` / ``mlops-lab db revision``.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through core.schema (mlops-lab db upgrade), which holds the lock")
context.configure(
    connection=connection,
    target_metadata=context.config.attributes.get("target_metadata"),  # set for autogenerate only
    compare_type=True,
)
with context.begin_transaction():  # the caller's transaction: this opens none of its own
    context.run_migrations()
