"""Database rows made into the plain values of `digest.models`."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import RowMapping

from digest.models import (
    Article,
    BodyBlock,
    Edition,
    EditionStatus,
    Subscriber,
)
from digest.store.urls import canonical_url


def _article(row: RowMapping) -> Article:
    return Article(
        id=row["id"],
        title=row["title"],
        summary=row["summary"],
        section=row["section"],
        url=row["url"],
        published_at=row["published_at"],
        image_url=row["image_url"],
        image_alt=row["image_alt"],
        author=row["author"],
        lead=bool(row["lead"]),
        body=tuple(BodyBlock(kind=b["kind"], text=b["text"]) for b in row["body"] or ()),
    )


def _subscriber(row: RowMapping) -> Subscriber:
    return Subscriber(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        locale=row["locale"],
        timezone=row["timezone"],
    )


def _content(item: Article) -> dict[str, Any]:
    """An article's stored fields other than its id and times."""
    return {
        "title": item.title,
        "summary": item.summary,
        "section": item.section,
        "url": item.url,
        "canonical_url": canonical_url(item.url),
        "image_url": item.image_url,
        "image_alt": item.image_alt,
        "author": item.author,
        "lead": item.lead,
        "body": [{"kind": b.kind, "text": b.text} for b in item.body],
    }


def _edition(row: RowMapping, slug: str) -> Edition:
    return Edition(
        id=row["id"],
        list_slug=slug,
        edition_date=row["edition_date"],
        created_at=row["created_at"],
        cutoff=row["cutoff"],
        subject=row["subject"],
        html=row["html"],
        text=row["text"],
        article_ids=tuple(row["article_ids"]),
        slot_nonce=row["slot_nonce"],
        status=EditionStatus(row["status"]),
        stories=tuple(tuple(ids) for ids in row["stories"] or ()),
    )
