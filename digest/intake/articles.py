"""Article records (seed files, JSON, the site's database) made into clean `Article` values.

Whatever a record holds, the Article that comes out has single-line text fields without control
characters, only http(s) links, and an aware publish time.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from digest.errors import InvalidInputError
from digest.models import Article, BodyBlock

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
TITLE_LIMIT = 300
SUMMARY_LIMIT = 600


def one_line(value: object, *, limit: int) -> str:
    """Text on one line: controls and line breaks become spaces, runs of space fold, and an
    overlong value is cut at a word boundary with an ellipsis."""
    text = " ".join(_CONTROL.sub(" ", unicodedata.normalize("NFC", str(value or ""))).split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,.;:") + "…"


def web_url(value: object) -> str | None:
    """The URL if it is an absolute http(s) URL with a host, else None."""
    url = str(value or "").strip()
    if _CONTROL.search(url) or any(ch.isspace() for ch in url):
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.hostname else None


def _published(record: Mapping[str, Any], now: datetime) -> datetime:
    if "published_hours_ago" in record:
        return now - timedelta(hours=float(record["published_hours_ago"]))
    raw = record.get("published_at")
    if raw is None:
        return now  # undated: it appears when it was first seen
    moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def article_from_record(record: Mapping[str, Any], *, now: datetime) -> Article:
    """An Article from one loosely typed record, or InvalidInputError naming the bad field."""
    article_id = one_line(record.get("id"), limit=255)
    if not article_id:
        raise InvalidInputError("article has no id")
    title = one_line(record.get("title"), limit=TITLE_LIMIT)
    if not title:
        raise InvalidInputError(f"article {article_id}: empty title")
    url = web_url(record.get("url"))
    if url is None:
        raise InvalidInputError(
            f"article {article_id}: url {record.get('url')!r} is not an http(s) URL"
        )
    section = one_line(record.get("section"), limit=100) or "News"
    try:
        published_at = _published(record, now)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"article {article_id}: bad publish time: {exc}") from exc
    image_url = web_url(record.get("image_url"))
    body = tuple(
        BodyBlock(
            kind="h2" if block.get("type") == "h2" else "p",
            text=one_line(block.get("text"), limit=5000),
        )
        for block in record.get("body") or ()
        if isinstance(block, Mapping)
    )
    return Article(
        id=article_id,
        title=title,
        summary=one_line(record.get("summary"), limit=SUMMARY_LIMIT),
        section=section,
        url=url,
        published_at=published_at,
        image_url=image_url,
        image_alt=one_line(record.get("image_alt"), limit=300) if image_url else "",
        author=one_line(record.get("author"), limit=100) or None,
        lead=bool(record.get("lead", False)),
        body=body,
    )
