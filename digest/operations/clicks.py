"""Following a counted link: where it leads, and the click to count (whether a person or a
machine followed it is `digest.operations.scanners`' to say).

The archive's copy of an edition names no reader but ARCHIVE: its clicks are counted as kind
"archive", apart from the mail's, since a visitor of the site is not a recipient. The
editor's preview (PREVIEW) redirects and counts nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum

from digest.config import ListSettings, Settings, SiteSettings
from digest.edition.clicks import (
    ANONYMOUS,
    ARCHIVE,
    ARCHIVE_CLICK,
    PREVIEW,
    Click,
    ClickLinks,
    read_click_token,
    read_reader_token,
    reader_token,
)
from digest.edition.render import slot_marker
from digest.errors import NotFoundError
from digest.models import Edition, Tracking
from digest.operations.scanners import BurstWatch, machine_reason
from digest.store import ClickRow, Store

# A request's method, User-Agent and time: what tells a person from a machine.
Agent = tuple[str, str, datetime]
# Genuine click tokens kept verified: a few hundred editions' links.
TOKEN_CACHE = 4096
# Readers' delivery times kept (per_subscriber tracking): a sent copy's time never changes.
DELIVERY_CACHE = 100_000


@dataclass(frozen=True, slots=True)
class Followed:
    """A genuine click: where to send the reader, and the row to count (None: not counted)."""

    location: str
    row: ClickRow | None


class Lookup(Enum):
    """`ClickResolver.follow` without the store, when the answer needs it."""

    NEEDS_STORE = "needs the store"


@dataclass(frozen=True, slots=True)
class CopySent:
    """`ClickResolver.follow` without the store, when it needs to know when this reader's
    copy went out: ask `remember_deliveries` for many such copies at once."""

    edition_id: int
    subscriber_id: int


class TokenCache:
    """Genuine click tokens and what they name, the most recently followed `size` of them.

    An edition has a few dozen links, followed thousands of times: the HMAC is checked once
    per token, not per click. Forged tokens are never kept, so they cannot crowd out genuine
    ones; `size` bounds the memory whatever is asked.
    """

    def __init__(self, secrets: dict[int, bytes], *, size: int = TOKEN_CACHE) -> None:
        self._secrets, self._size = secrets, size
        self._known: OrderedDict[str, Click] = OrderedDict()
        self._lock = threading.Lock()  # the event loop and the thread pool both read it

    def read(self, token: str) -> Click | None:
        """The click a genuine token names, or None for anything forged or altered."""
        with self._lock:
            click = self._known.get(token)
            if click is not None:
                self._known.move_to_end(token)
                return click
        click = read_click_token(token, secrets=self._secrets)
        if click is not None:
            with self._lock:
                self._known[token] = click
                if len(self._known) > self._size:
                    self._known.popitem(last=False)
        return click


class ClickResolver:
    """Reads click tokens against the store; tokens, editions and article URLs are cached.

    An aggregate click of an edition already seen is answered from the caches alone, so the
    web app can answer it on its event loop; `follow(..., read_store=False)` says when not.
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store
        self.secrets = settings.site.unsubscribe_secrets()
        self.tokens = TokenCache(self.secrets)
        self._editions: dict[tuple[str, date], tuple[Edition, dict[str, str]]] = {}
        self._first_sent: dict[int, datetime] = {}
        self._copies_sent: OrderedDict[tuple[int, int], datetime] = OrderedDict()
        self._copies_lock = threading.Lock()
        self.bursts = BurstWatch()

    def _edition(
        self, list_slug: str, day: date, *, read_store: bool
    ) -> tuple[Edition, dict[str, str]] | Lookup | None:
        key = (list_slug, day)
        if key in self._editions:
            return self._editions[key]
        if not read_store:
            return Lookup.NEEDS_STORE
        edition = self.store.edition_for(list_slug, day)
        if edition is None:
            return None  # not cached: the edition may be made later
        urls = {a.id: a.url for a in self.store.articles_by_id(edition.article_ids)}
        self._editions[key] = (edition, urls)
        return self._editions[key]

    def _delivered_at(
        self, edition_id: int, subscriber_id: int | None, *, read_store: bool
    ) -> datetime | Lookup | None:
        if subscriber_id is None and edition_id in self._first_sent:
            return self._first_sent[edition_id]
        if subscriber_id is not None:
            with self._copies_lock:
                known = self._copies_sent.get((edition_id, subscriber_id))
            if known is not None:
                return known
        if not read_store:
            return Lookup.NEEDS_STORE
        if subscriber_id is not None:
            return self.store.delivered_at(edition_id, subscriber_id)
        first = self.store.delivered_at(edition_id, None)
        if first is not None:  # none yet: asked again next time, the send may have begun
            self._first_sent[edition_id] = first
        return first

    def follow(
        self,
        token: str,
        reader: str,
        *,
        method: str,
        user_agent: str,
        now: datetime,
        kind: str,
        read_store: bool = True,
        asked: bool = False,
    ) -> Followed | CopySent | Lookup | None:
        """The click a genuine link names, classified; None for a forged or altered one.

        With `read_store` False nothing is read from the database: CopySent when only the
        reader's delivery time is missing, NEEDS_STORE when the caches cannot answer (a new
        edition). `asked`: `remember_deliveries` was just asked about this copy, so a time
        still missing means it has not gone out.
        """
        click = self.tokens.read(token)
        if click is None or (kind == "open") != (click.article_id == ""):
            return None
        try:
            mailing_list = self.settings.list(click.list_slug)
        except NotFoundError:
            return None
        found = self._edition(click.list_slug, click.edition_date, read_store=read_store)
        if found is None or isinstance(found, Lookup):
            return found
        edition, urls = found
        location = urls.get(click.article_id) if kind == "click" else ""
        if location is None:
            return None
        if reader in (ARCHIVE, PREVIEW):
            agent = (method, user_agent, now)
            return _from_a_page(
                edition.id, click.article_id, reader, location, kind=kind, agent=agent
            )
        subscriber_id = None
        if reader != ANONYMOUS:
            subscriber_id = read_reader_token(reader, click, secrets=self.secrets)
            if subscriber_id is None:
                return None
            if mailing_list.tracking is not Tracking.PER_SUBSCRIBER:
                subscriber_id = None  # the list stopped counting readers: count the click only
        delivered_at = self._delivered_at(edition.id, subscriber_id, read_store=read_store)
        if isinstance(delivered_at, Lookup):
            if subscriber_id is None:
                return delivered_at
            if not asked:
                return CopySent(edition.id, subscriber_id)
            delivered_at = None
        reason = machine_reason(
            method=method,
            user_agent=user_agent,
            clicked_at=now,
            delivered_at=delivered_at,
            window=mailing_list.machine_window,
        )
        burst = None
        if subscriber_id is not None and kind == "click" and not reason:
            burst = self.bursts.burst_since(
                edition.id, subscriber_id, click.article_id, now, len(edition.article_ids)
            )
            reason = "burst" if burst else ""
        row = ClickRow(
            edition_id=edition.id,
            article_id=click.article_id,
            subscriber_id=subscriber_id,
            kind=kind,
            machine=bool(reason),
            reason=reason,
            clicked_at=now,
            burst_since=burst,
        )
        return Followed(location=location, row=row)

    def remember_deliveries(self, copies: Sequence[CopySent]) -> None:
        """Read when the copies went out, in one query, and keep the times of those sent."""
        found = self.store.delivery_times([(c.edition_id, c.subscriber_id) for c in copies])
        with self._copies_lock:
            self._copies_sent.update(found)
            while len(self._copies_sent) > DELIVERY_CACHE:
                self._copies_sent.popitem(last=False)


def _from_a_page(
    edition_id: int, article_id: str, page: str, location: str, *, kind: str, agent: Agent
) -> Followed:
    """A link on the archive's copy of the edition counts as an archive click, apart from the
    mail's clicks (crawlers' and HEAD requests as machine); the editor's preview and the
    archive's pixel count nothing."""
    if page != ARCHIVE or kind != "click":
        return Followed(location=location, row=None)
    method, user_agent, now = agent
    reason = machine_reason(
        method=method, user_agent=user_agent, clicked_at=now, delivered_at=None, window=0
    )
    row = ClickRow(
        edition_id=edition_id,
        article_id=article_id,
        subscriber_id=None,
        kind=ARCHIVE_CLICK,
        machine=bool(reason),
        reason=reason,
        clicked_at=now,
    )
    return Followed(location=location, row=row)


def click_links(
    site: SiteSettings, mailing_list: ListSettings, day: date, *, nonce: str
) -> ClickLinks | None:
    """The edition's counted links (tracking "off": none, no pixel); per_subscriber puts a
    slot in them that each copy fills, so rendering stays once per edition."""
    if mailing_list.tracking is Tracking.OFF:
        return None
    reader = slot_marker(nonce, "reader")
    return ClickLinks(
        base_url=site.base_url,
        list_slug=mailing_list.slug,
        edition_date=day,
        secret=site.unsubscribe_secret.get_secret_value().encode(),
        key_id=site.unsubscribe_key_id,
        reader=reader if mailing_list.tracking is Tracking.PER_SUBSCRIBER else ANONYMOUS,
        opens=mailing_list.opens,
    )


def reader_part(
    site: SiteSettings, mailing_list: ListSettings, day: date, subscriber_id: int
) -> str:
    """What fills a copy's counted links' reader part: the signed reader token where the list
    counts clicks per subscriber (one HMAC per message), else "-", naming nobody."""
    if mailing_list.tracking is not Tracking.PER_SUBSCRIBER:
        return ANONYMOUS
    return reader_token(
        subscriber_id,
        list_slug=mailing_list.slug,
        edition_date=day,
        secret=site.unsubscribe_secret.get_secret_value().encode(),
        key_id=site.unsubscribe_key_id,
    )
