"""Baseline: our tables as they were before migrations (the prediction log without user_key).

Revision ID: 0001
Revises:
Create Date: 2026-12-07

Databases made before migrations hold some of these tables already (each component used to create
its own), so this revision creates only the tables that are missing and leaves existing ones and
their rows alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def _document_table(name: str, counter: str) -> None:
    if _missing(name):
        op.create_table(
            name,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("state", JSON, nullable=False),
            sa.Column(counter, sa.Integer, nullable=False),
        )


def upgrade() -> None:
    if _missing("predictions"):
        op.create_table(
            "predictions",
            sa.Column("request_id", sa.String(64), primary_key=True),
            sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
            sa.Column("model_name", sa.String(200), nullable=False),
            sa.Column("model_version", sa.String(64), nullable=False),
            sa.Column("arm", sa.String(64)),
            sa.Column("strategy", sa.String(64)),
            sa.Column("features", JSON, nullable=False),
            sa.Column("prediction", sa.String(200)),
            sa.Column("probabilities", JSON),
            sa.Column("latency_ms", sa.Float),
            sa.Column("status", sa.String(32), nullable=False),
        )
        op.create_index("ix_predictions_ts", "predictions", ["ts"])
        op.create_index("ix_predictions_model_version", "predictions", ["model_version"])
    if _missing("feedback"):
        op.create_table(
            "feedback",
            sa.Column("request_id", sa.String(64), sa.ForeignKey("predictions.request_id"), primary_key=True),
            sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
            sa.Column("label", sa.String(200), nullable=False),
        )
    _document_table("routing_state", "version")
    _document_table("rollout_state", "revision")
    if _missing("bandit_arms"):
        op.create_table(
            "bandit_arms",
            sa.Column("arm", sa.String(64), primary_key=True),
            sa.Column("successes", sa.Float, nullable=False),
            sa.Column("failures", sa.Float, nullable=False),
            sa.Column("updates", sa.Integer, nullable=False),
        )
    if _missing("retrain_guard"):
        op.create_table(
            "retrain_guard",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("holder", sa.String(64)),
            sa.Column("lease_until", sa.Float),
            sa.Column("last_started", sa.Float),
            sa.Column("last_finished", sa.Float),
            sa.Column("last_result", sa.String(500)),
            sa.Column("starts", sa.Integer, nullable=False),
        )
    if _missing("monitor_latest"):
        op.create_table(
            "monitor_latest",
            sa.Column("check_name", sa.String(64), primary_key=True),
            sa.Column("finding", JSON, nullable=False),
            sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        )
    if _missing("monitor_history"):
        op.create_table(
            "monitor_history",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("check_name", sa.String(64), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("finding", JSON, nullable=False),
            sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index("ix_monitor_history_check_name", "monitor_history", ["check_name"])
        op.create_index("ix_monitor_history_ts", "monitor_history", ["ts"])


def downgrade() -> None:
    raise NotImplementedError("the baseline is not downgraded: restore a backup instead (docs/disaster-recovery.md)")
