"""Empty a shared database (PostgreSQL outlives a test) of our tables and of Alembic's version table."""

from __future__ import annotations

import sqlalchemy as sa

from core.schema import OUR_TABLES


def drop_our_tables(engine: sa.Engine) -> None:
    """Drop every table of ours and ``alembic_version``, so the next open migrates from nothing."""
    reflected = sa.MetaData()
    reflected.reflect(engine, only=lambda name, _meta: name in (*OUR_TABLES, "alembic_version"))
    reflected.drop_all(engine)
