"""Add `clicks`: followed links and fetched pixels, human or machine, per edition and article.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clicks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.String(255), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("machine", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        # digest.store.schema.UTCDateTime, as in revision 0001.
        sa.Column("clicked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"]),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_clicks_edition_article", "clicks", ["edition_id", "article_id"])


def downgrade() -> None:
    op.drop_index("ix_clicks_edition_article", table_name="clicks")
    op.drop_table("clicks")
