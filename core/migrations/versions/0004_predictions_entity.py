"""predictions.entity_id and .features_at: the entity a row was scored for, when its features were measured.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

A /v1/predict row may name an entity (``{"specimen_id": ...}``) instead of sending its features; the service
reads them from the feature store's online store (`serving.entity_features`). The log keeps the values it
scored (``features``, as for any row), the entity's id and the time those values were measured, so a
prediction can be traced to the exact feature state it saw. Both nullable: rows sent as features, and rows
logged before this revision, read as NULL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("predictions", sa.Column("entity_id", sa.String(64)))
    op.add_column("predictions", sa.Column("features_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("predictions", "features_at")
    op.drop_column("predictions", "entity_id")
