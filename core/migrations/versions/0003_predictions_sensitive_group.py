"""predictions.sensitive_group: the row's dataset.group_column value (e.g. a site), NULL without one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

Sent per row with /v1/predict and never given to the model; the monitoring fairness check (C58) compares
the groups' error rates on labelled rows. Nullable, so rows logged before it read as NULL (no group).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("predictions", sa.Column("sensitive_group", sa.String(64)))


def downgrade() -> None:
    op.drop_column("predictions", "sensitive_group")
