"""A feed item's picture from its article page, when the item names none of its own.

The order of an article's image: the item's own enclosure or media image, then the og:image
(else twitter:image) of its article page, then the first real <img> of its text. A page is
read only for a new item (never one already stored: its image was settled then), at most
`[feeds] page_images` pages per feed per poll, a few at once, each within `page_timeout` and
`page_bytes` and through the same address guard as the feeds, and never on a reserved name
(`*.example`, `*.test`, `*.invalid`, `localhost`). A page that fails costs only its image,
with one warning naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from urllib.parse import urlsplit

from digest.config import FeedsSettings
from digest.errors import FeedError
from digest.intake.feeds import FeedItem
from digest.intake.pages import page_image
from digest.mail.fetching import fetch_page_head
from digest.store import Store

log = logging.getLogger(__name__)
# Pages read at once: a few slow pages then cost one page_timeout, not one each.
_AT_ONCE = 4


def with_page_images(
    items: Sequence[FeedItem], *, feed: str, limits: FeedsSettings, store: Store
) -> list[FeedItem]:
    """The items with the image of their article page where they name none of their own.

    A stored item that names no image keeps the one it was stored with, so a later poll never
    trades a page's image for its text's. With `limits.page_images` 0 the items are as parsed.
    """
    if limits.page_images == 0:
        return list(items)
    plain = [item for item in items if not item.own_image]
    stored = store.stored_feed_images([(item.key, item.article.url) for item in plain])
    pages = list(
        dict.fromkeys(
            item.article.url
            for item in plain
            if item.key not in stored and not _reserved(item.article.url)
        )
    )
    if len(pages) > limits.page_images:
        log.warning(
            "feed %r: %d new items name no image; the pages of the first %d are read"
            " ([feeds] page_images)",
            feed,
            len(pages),
            limits.page_images,
        )
        pages = pages[: limits.page_images]
    found: dict[str, tuple[str, str] | None] = {}
    if pages:
        with ThreadPoolExecutor(max_workers=min(_AT_ONCE, len(pages))) as pool:
            images = pool.map(lambda url: _image_of(url, feed=feed, limits=limits), pages)
            found = dict(zip(pages, images, strict=True))
    return [_pictured(item, stored.get(item.key), found.get(item.article.url)) for item in items]


# RFC 2606 and 6761: names that never reach a real site, so no page is read there (the seeds
# and the tests use them; looking them up could only wait on a resolver).
_RESERVED = ("example", "test", "invalid", "localhost")
_RESERVED_SITES = ("example.com", "example.net", "example.org")


def _reserved(url: str) -> bool:
    """Whether the URL's host is a reserved name: an example, a test or an invalid one."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    last = host.rpartition(".")[2]
    return last in _RESERVED or any(
        host == site or host.endswith("." + site) for site in _RESERVED_SITES
    )


def _pictured(
    item: FeedItem, stored: tuple[str | None, str] | None, page: tuple[str, str] | None
) -> FeedItem:
    """The item with its stored image kept, else its page's, unless it names its own."""
    image = stored if stored and stored[0] else page
    if item.own_image or not image or not image[0]:
        return item
    article = replace(item.article, image_url=image[0], image_alt=image[1])
    return replace(item, article=article)


def _image_of(url: str, *, feed: str, limits: FeedsSettings) -> tuple[str, str] | None:
    """The image the page at `url` names, or None, with a warning when the page failed."""
    try:
        page = fetch_page_head(url, limits=limits)
        return page_image(page.body, url=page.url, content_type=page.content_type)
    except Exception as exc:  # one page's fault, whatever it is, costs only its image
        why = str(exc) if isinstance(exc, FeedError) else f"{exc.__class__.__name__}: {exc}"
        # Named by the page, also when the fault is at the far end of a redirect.
        why = why if why.startswith(url) else f"{url}: {why}"
        log.warning("feed %r: no image from the article page: %s", feed, why)
        return None
