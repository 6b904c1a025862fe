"""Feeds into the store: import one source now, or poll every configured feed.

Composes fetching (HTTP), feeds (parsing, pure), the article pages' images (page_images) and
the store. A feed that fails is recorded in its `feed_state` row and reported; the other feeds
go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from digest.config import FeedRules, FeedSettings, FeedsSettings
from digest.errors import DigestError, FeedError, InvalidInputError
from digest.intake.articles import web_url
from digest.intake.feeds import parse_feed
from digest.mail.fetching import fetch
from digest.operations.page_images import with_page_images
from digest.store import Store

log = logging.getLogger(__name__)


class PollStatus(StrEnum):
    """How one feed's poll went."""

    FETCHED = "fetched"
    NOT_MODIFIED = "not-modified"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class FeedReport:
    """What one feed gave: how many articles were new or changed, each warning, or the error."""

    feed: str
    source: str
    status: PollStatus
    new: int = 0
    revised: int = 0
    updated: int = 0
    unchanged: int = 0
    warnings: tuple[str, ...] = ()
    error: str | None = None


def import_source(
    source: str,
    *,
    rules: FeedRules,
    limits: FeedsSettings,
    store: Store,
    now: datetime,
    base_url: str | None = None,
) -> FeedReport:
    """Store the items of the feed in a file or at an http(s) URL (fetched unconditionally).

    A file's relative links resolve against `base_url` if given, else the address the feed
    declares. Raises FeedError naming the source when it cannot be read or is no feed at all.
    """
    if base_url is not None and web_url(base_url) is None:
        raise InvalidInputError(f"--base-url {base_url!r} is not an http(s) URL")
    if web_url(source):
        fetched = fetch(source, limits=limits)
        return _save(
            fetched.body,
            rules=rules,
            location=fetched.url,
            content_type=fetched.content_type,
            limits=limits,
            store=store,
            now=now,
        )
    report = _save(
        _read_file(Path(source), limits.max_bytes),
        rules=rules,
        location=base_url or source,
        content_type="",
        limits=limits,
        store=store,
        now=now,
    )
    return replace(report, source=source)


def poll_feeds(settings: FeedsSettings, store: Store, *, now: datetime) -> list[FeedReport]:
    """Poll every configured feed once, with a conditional GET; one report per feed, in order.

    The scheduler calls this every `settings.poll_minutes`. A feed that fails (unreachable,
    too big, not a feed) gets a FAILED report and keeps its validators; the rest go on.
    """
    return [_poll(feed, settings, store, now) for feed in settings.sources]


def _poll(feed: FeedSettings, limits: FeedsSettings, store: Store, now: datetime) -> FeedReport:
    etag, last_modified = store.feed_validators(feed.url)
    try:
        fetched = fetch(feed.url, limits=limits, etag=etag, last_modified=last_modified)
        if fetched.not_modified:
            report = FeedReport(feed=feed.name, source=feed.url, status=PollStatus.NOT_MODIFIED)
        else:
            report = _save(
                fetched.body,
                rules=feed,
                location=fetched.url,
                content_type=fetched.content_type,
                limits=limits,
                store=store,
                now=now,
            )
    except Exception as exc:  # one feed's fault, whatever it is, stays with it
        if not isinstance(exc, DigestError):
            exc = FeedError(f"feed {feed.name!r}: {exc.__class__.__name__}: {exc}")
        log.warning("feed %s: %s", feed.name, exc)
        # The old validators stay: the next poll fetches the whole feed again.
        store.record_feed_poll(
            feed.url, now=now, etag=etag, last_modified=last_modified, error=str(exc)
        )
        return FeedReport(feed=feed.name, source=feed.url, status=PollStatus.FAILED, error=str(exc))
    store.record_feed_poll(
        feed.url, now=now, etag=fetched.etag, last_modified=fetched.last_modified, error=None
    )
    return report


def _save(
    body: bytes,
    *,
    rules: FeedRules,
    location: str,
    content_type: str,
    limits: FeedsSettings,
    store: Store,
    now: datetime,
) -> FeedReport:
    parsed = parse_feed(body, rules=rules, now=now, location=location, content_type=content_type)
    items = with_page_images(parsed.items, feed=rules.name, limits=limits, store=store)
    counts = store.save_feed_articles([(item.key, item.article) for item in items], now=now)
    for warning in parsed.warnings:
        log.warning("%s", warning)
    return FeedReport(
        feed=rules.name,
        source=location,
        status=PollStatus.FETCHED,
        new=counts["new"],
        revised=counts["revised"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
        warnings=parsed.warnings,
    )


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            body = handle.read(max_bytes + 1)  # one byte more tells an oversize file
    except OSError as exc:
        raise FeedError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(body) > max_bytes:
        raise FeedError(f"{path}: over the {max_bytes}-byte cap")
    return body
