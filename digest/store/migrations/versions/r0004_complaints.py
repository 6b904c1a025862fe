"""Add `complaints`: one row per ARF feedback report `digest bounces` read.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "complaints",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("feedback_type", sa.String(32), nullable=False),
        sa.Column("user_agent", sa.Text(), nullable=False),
        sa.Column("reported_domain", sa.String(255), nullable=False),
        # digest.store.schema.UTCDateTime, as in revision 0001.
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("edition_id", sa.Integer(), nullable=True),
        sa.Column("named_by", sa.String(20), nullable=False),
        sa.Column("effect", sa.String(20), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"]),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"]),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_complaints_subscriber", "complaints", ["subscriber_id"])


def downgrade() -> None:
    op.drop_index("ix_complaints_subscriber", table_name="complaints")
    op.drop_table("complaints")
