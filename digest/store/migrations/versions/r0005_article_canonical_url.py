"""Articles get `canonical_url` (one page, one article across sources) and an index on
`first_seen_at` (late arrivals join the next edition); editions get `stories`.

Existing articles get their canonical URL computed here; where two rows already share one,
both stay (their ids may have been sent) and new copies match the older row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from digest.store.urls import canonical_url

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("canonical_url", sa.Text(), nullable=True))
    articles = sa.table(
        "articles", sa.column("id", sa.String), sa.column("url"), sa.column("canonical_url")
    )
    bind = op.get_bind()
    for article_id, url in bind.execute(sa.select(articles.c.id, articles.c.url)).all():
        bind.execute(
            articles.update()
            .where(articles.c.id == article_id)
            .values(canonical_url=canonical_url(url))
        )
    op.create_index("ix_articles_canonical_url", "articles", ["canonical_url"])
    op.create_index("ix_articles_first_seen_at", "articles", ["first_seen_at"])
    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("stories", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("stories")
    op.drop_index("ix_articles_first_seen_at", table_name="articles")
    op.drop_index("ix_articles_canonical_url", table_name="articles")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("canonical_url")
