"""Add `edition_notes`: the editor's note of a list's edition, by list and edition date.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "edition_notes",
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("edition_date", sa.Date(), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        # digest.store.schema.UTCDateTime, as in 0001.
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["list_id"], ["lists.id"]),
        sa.PrimaryKeyConstraint("list_id", "edition_date"),
    )


def downgrade() -> None:
    op.drop_table("edition_notes")
