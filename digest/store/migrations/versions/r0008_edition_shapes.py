"""Add `edition_shapes`: an editor's lead, exclusions, section order and subject of a list's
edition, by list and edition date.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "edition_shapes",
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("edition_date", sa.Date(), nullable=False),
        sa.Column("lead_article_id", sa.String(255), nullable=True),
        sa.Column("excluded_ids", sa.JSON(), nullable=False),
        sa.Column("section_order", sa.JSON(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        # digest.store.schema.UTCDateTime, as in 0001.
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["list_id"], ["lists.id"]),
        sa.PrimaryKeyConstraint("list_id", "edition_date"),
    )


def downgrade() -> None:
    op.drop_table("edition_shapes")
