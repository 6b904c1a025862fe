"""Add `unsubscribes`: each unsubscribe, by channel (one-click, page, ...) and edition.

Subscriptions already unsubscribed get a row with channel "unknown" at their last change,
credited to the newest edition of the list sent to the reader by then (as new rows are), so
the health numbers of editions sent before this revision keep their unsubscribes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain SQL that SQLite and PostgreSQL both read: the newest edition of the list whose copy
# went to the reader at or before the subscription's last change.
BACKFILL = """
INSERT INTO unsubscribes (subscriber_id, list_id, edition_id, channel, unsubscribed_at)
SELECT s.subscriber_id, s.list_id,
       (SELECT e.id FROM editions e JOIN deliveries d ON d.edition_id = e.id
         WHERE e.list_id = s.list_id AND d.subscriber_id = s.subscriber_id
           AND d.state = 'sent' AND d.sent_at <= s.updated_at
         ORDER BY e.edition_date DESC LIMIT 1),
       'unknown', s.updated_at
  FROM subscriptions s
 WHERE s.status = 'unsubscribed'
"""


def upgrade() -> None:
    op.create_table(
        "unsubscribes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("edition_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        # digest.store.schema.UTCDateTime, as in revision 0001.
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"]),
        sa.ForeignKeyConstraint(["list_id"], ["lists.id"]),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_unsubscribes_edition", "unsubscribes", ["edition_id"])
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_index("ix_unsubscribes_edition", table_name="unsubscribes")
    op.drop_table("unsubscribes")
