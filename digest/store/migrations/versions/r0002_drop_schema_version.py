"""Drop `schema_version`, the hand-made upgrades' record: alembic_version replaces it.

Only a database those upgrades made has it (stamped at 0001); on any other this does nothing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DROP TABLE IF EXISTS schema_version")


def downgrade() -> None:
    # Empty: the hand-made upgrades would run their steps again, and each skips what exists.
    op.create_table(
        "schema_version",
        sa.Column("version", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
