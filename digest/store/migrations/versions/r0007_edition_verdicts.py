"""Add `edition_verdicts`: how an edition that waited for an editor's approval was decided.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "edition_verdicts",
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("decided_by", sa.String(320), nullable=False),
        # digest.store.schema.UTCDateTime, as in revision 0001.
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"]),
        sa.PrimaryKeyConstraint("edition_id"),
    )


def downgrade() -> None:
    op.drop_table("edition_verdicts")
