"""The schema as the hand-made upgrades left it (their version 5), every table but theirs.

A database made by those upgrades (it has a `schema_version` table) holds exactly this, so
`digest.store.schema.upgrade` stamps it at this revision instead of running it.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool) -> sa.Column[object]:
    # digest.store.schema.UTCDateTime: TIMESTAMP WITH TIME ZONE on PostgreSQL, DATETIME on SQLite.
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "articles",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("section", sa.String(100), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("image_alt", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=True),
        sa.Column("lead", sa.Boolean(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        _time("published_at", nullable=False),
        _time("first_seen_at", nullable=False),
        _time("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_articles_published_at", "articles", ["published_at"])
    op.create_table(
        "feed_state",
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        _time("last_polled", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("url"),
    )
    op.create_table(
        "lists",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        _time("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("locale", sa.String(35), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        _time("created_at", nullable=False),
        sa.Column("soft_bounces", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _time("soft_bounced_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email_key"),
    )
    op.create_table(
        "editions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("edition_date", sa.Date(), nullable=False),
        _time("created_at", nullable=False),
        _time("cutoff", nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("article_ids", sa.JSON(), nullable=False),
        sa.Column("slot_nonce", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.ForeignKeyConstraint(["list_id"], ["lists.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("list_id", "edition_date", name="uq_editions_list_date"),
    )
    op.create_table(
        "subscriptions",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=True),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"]),
        sa.ForeignKeyConstraint(["list_id"], ["lists.id"]),
        sa.PrimaryKeyConstraint("subscriber_id", "list_id"),
    )
    op.create_index("ix_subscriptions_list_status", "subscriptions", ["list_id", "status"])
    op.create_table(
        "bounce_events",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("edition_id", sa.Integer(), nullable=True),
        sa.Column("effect", sa.String(20), nullable=False),
        _time("processed_at", nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"]),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"]),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(
        "ix_bounce_events_subscriber_edition", "bounce_events", ["subscriber_id", "edition_id"]
    )
    op.create_table(
        "deliveries",
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_reply", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(100), nullable=True),
        _time("lease_expires_at", nullable=True),
        _time("next_attempt_at", nullable=True),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
        _time("sent_at", nullable=True),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"]),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"]),
        sa.PrimaryKeyConstraint("edition_id", "subscriber_id"),
    )
    # Claims read each state's due rows in subscriber order straight from this index.
    op.create_index("ix_deliveries_due", "deliveries", ["edition_id", "state", "subscriber_id"])
    op.create_table(
        "schedule_runs",
        sa.Column("list_id", sa.Integer(), nullable=False),
        _time("slot", nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("edition_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(100), nullable=True),
        _time("recorded_at", nullable=False),
        sa.ForeignKeyConstraint(["list_id"], ["lists.id"]),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"]),
        sa.PrimaryKeyConstraint("list_id", "slot"),
    )


def downgrade() -> None:
    for table in (
        "schedule_runs",
        "deliveries",
        "bounce_events",
        "subscriptions",
        "editions",
        "subscribers",
        "lists",
        "feed_state",
        "articles",
    ):
        op.drop_table(table)
