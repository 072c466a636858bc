"""predictions.user_key: the keyed hash of X-User-Id (serving.credentials.UserKeys), NULL without one.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

Nullable, so rows logged before it read as NULL. A database made before migrations may have the
column already (the release that added it altered the table in place): then nothing is done.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("predictions")}
    if "user_key" not in present:
        op.add_column("predictions", sa.Column("user_key", sa.String(32)))


def downgrade() -> None:
    op.drop_column("predictions", "user_key")
