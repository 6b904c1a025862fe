"""Articles: saved from the site and its feeds, read back for selection and the archive."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from digest.models import (
    Article,
)
from digest.store.base import StoreBase
from digest.store.rows import _article, _content
from digest.store.schema import (
    articles,
    feed_state,
)
from digest.store.urls import canonical_url


class ArticleStore(StoreBase):
    """Articles: saved from the site and its feeds, read back for selection and the archive."""

    def save_articles(
        self, items: Sequence[Article], *, now: datetime, update_existing: bool
    ) -> tuple[int, int]:
        """Insert new articles (and update known ones if asked); returns (inserted, updated).

        An article whose canonical URL is already stored is that article: the stored id stays.
        """
        inserted = updated = 0
        with self._tx() as tx:
            for item in items:
                values = {**_content(item), "published_at": item.published_at, "updated_at": now}
                exists = tx.execute(select(articles.c.id).where(articles.c.id == item.id)).first()
                known = item.id if exists else _same_page(tx, values["canonical_url"])
                if known is None:
                    tx.execute(insert(articles).values(id=item.id, first_seen_at=now, **values))
                    inserted += 1
                elif update_existing:
                    tx.execute(update(articles).where(articles.c.id == known).values(**values))
                    updated += 1
        return inserted, updated

    def articles_published(self, *, after: datetime, until: datetime) -> list[Article]:
        """Articles with after < published_at <= until, newest first."""
        query = (
            select(articles)
            .where(articles.c.published_at > after, articles.c.published_at <= until)
            .order_by(articles.c.published_at.desc(), articles.c.id)
        )
        with self._tx(read_only=True) as tx:
            return [_article(row) for row in tx.execute(query).mappings()]

    def edition_candidates(
        self,
        *,
        published_after: datetime,
        seen_after: datetime | None,
        oldest: datetime,
        until: datetime,
    ) -> list[Article]:
        """What may go into an edition made at `until`, newest first: articles published in
        (published_after, until], and those first stored in (seen_after, until] that were
        published after `oldest`, so an item that arrived late or backdated is not lost."""
        published = articles.c.published_at > published_after
        if seen_after is not None:
            late = and_(
                articles.c.first_seen_at > seen_after,
                articles.c.first_seen_at <= until,
                articles.c.published_at > oldest,
            )
            published = or_(published, late)
        query = (
            select(articles)
            .where(articles.c.published_at <= until, published)
            .order_by(articles.c.published_at.desc(), articles.c.id)
        )
        with self._tx(read_only=True) as tx:
            return [_article(row) for row in tx.execute(query).mappings()]

    def articles_by_id(self, ids: Sequence[str]) -> list[Article]:
        """The articles named, in the order named (missing ones are left out)."""
        with self._tx(read_only=True) as tx:
            rows = {
                r["id"]: _article(r)
                for r in tx.execute(select(articles).where(articles.c.id.in_(ids))).mappings()
            }
        return [rows[i] for i in ids if i in rows]

    def save_feed_articles(
        self, items: Sequence[tuple[str, Article]], *, now: datetime
    ) -> dict[str, int]:
        """Store a feed's articles, each under its identity key (the id before any "~revision").

        A known item keeps the publish time it was first stored with, so an undated item or a
        feed that re-dates its items never pushes an old story back into an edition. Only a new
        revision (resend_updated: an id that differs from the stored one for the same key) takes
        its new id and publish time, which the selection then treats as a new article.
        Returns how many items were "new", "revised", "updated" and "unchanged".
        """
        counts = dict.fromkeys(("new", "revised", "updated", "unchanged"), 0)
        with self._tx() as tx:
            for key, item in items:
                values = _content(item)
                row = (
                    tx.execute(
                        select(articles).where(
                            or_(
                                articles.c.id == key,
                                articles.c.id.startswith(f"{key}~", autoescape=True),
                            )
                        )
                    )
                    .mappings()
                    .first()
                )
                if row is None and _same_page(tx, values["canonical_url"]) is not None:
                    counts["unchanged"] += 1  # another source's copy of a stored article
                elif row is None:
                    tx.execute(
                        insert(articles).values(
                            id=item.id,
                            published_at=item.published_at,
                            first_seen_at=now,
                            updated_at=now,
                            **values,
                        )
                    )
                    counts["new"] += 1
                elif row["id"] != item.id:
                    tx.execute(
                        update(articles)
                        .where(articles.c.id == row["id"])
                        .values(
                            id=item.id, published_at=item.published_at, updated_at=now, **values
                        )
                    )
                    counts["revised"] += 1
                elif any(row[name] != value for name, value in values.items()):
                    tx.execute(
                        update(articles)
                        .where(articles.c.id == item.id)
                        .values(updated_at=now, **values)
                    )
                    counts["updated"] += 1
                else:
                    counts["unchanged"] += 1
        return counts

    def stored_feed_images(
        self, items: Sequence[tuple[str, str]]
    ) -> dict[str, tuple[str | None, str]]:
        """For each (identity key, URL) of a feed item already stored, under its key or as
        another source's copy of the same page, the (image URL, alt) stored with it, by key.

        A key missing from the answer is a new item: only those have their page read.
        """
        found: dict[str, tuple[str | None, str]] = {}
        with self._tx(read_only=True) as tx:
            for key, url in items:
                by_key = or_(
                    articles.c.id == key, articles.c.id.startswith(f"{key}~", autoescape=True)
                )
                by_page = articles.c.canonical_url == canonical_url(url)
                for known in (by_key, by_page):
                    row = tx.execute(
                        select(articles.c.image_url, articles.c.image_alt).where(known).limit(1)
                    ).first()
                    if row is not None:
                        found[key] = (row.image_url, row.image_alt)
                        break
        return found

    def feed_validators(self, url: str) -> tuple[str | None, str | None]:
        """The (ETag, Last-Modified) of the feed's last good answer, for a conditional GET."""
        with self._tx(read_only=True) as tx:
            row = tx.execute(
                select(feed_state.c.etag, feed_state.c.last_modified).where(feed_state.c.url == url)
            ).first()
        return (None, None) if row is None else (row.etag, row.last_modified)

    def feed_polls(self) -> dict[str, tuple[datetime | None, str | None]]:
        """Each polled feed URL's last poll time and last error (None: it went well)."""
        query = select(feed_state.c.url, feed_state.c.last_polled, feed_state.c.last_error)
        with self._tx(read_only=True) as tx:
            return {row.url: (row.last_polled, row.last_error) for row in tx.execute(query)}

    def feed_article_counts(self, names: Sequence[str]) -> dict[str, int]:
        """How many stored articles each feed gave (its items' ids start with "NAME:")."""
        with self._tx(read_only=True) as tx:
            return {
                name: tx.execute(
                    select(func.count()).where(
                        articles.c.id.startswith(f"{name}:", autoescape=True)
                    )
                ).scalar_one()
                for name in names
            }

    def record_feed_poll(
        self,
        url: str,
        *,
        now: datetime,
        etag: str | None,
        last_modified: str | None,
        error: str | None,
    ) -> None:
        """Remember a poll's outcome; the validators given replace the stored ones."""
        values = {
            "etag": etag,
            "last_modified": last_modified,
            "last_polled": now,
            "last_error": error,
        }
        with self._tx() as tx:
            tx.execute(self._insert_ignore(feed_state).values(url=url, **values))
            tx.execute(update(feed_state).where(feed_state.c.url == url).values(**values))

    def article_sections(self, *, since: datetime) -> list[str]:
        """The sections of articles published since `since`, alphabetically."""
        with self._tx(read_only=True) as tx:
            return list(
                tx.execute(
                    select(articles.c.section)
                    .where(articles.c.published_at >= since)
                    .distinct()
                    .order_by(articles.c.section)
                ).scalars()
            )


def _same_page(tx: Connection, canonical: str) -> str | None:
    """The id of the article first stored under this canonical URL, if any."""
    return tx.execute(
        select(articles.c.id)
        .where(articles.c.canonical_url == canonical)
        .order_by(articles.c.first_seen_at, articles.c.id)
        .limit(1)
    ).scalar()
