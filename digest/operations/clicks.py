"""Following a counted link: where it leads, and whether a person or a machine followed it.

Link scanners (Microsoft Defender, Mimecast, ...) fetch every link of a mail within seconds
of delivery, and some only ask with HEAD. Such a click is recorded with `machine` set and a
reason, and left out of the totals:

    head     the request was HEAD (a person's browser sends GET)
    scanner  the User-Agent names a known scanner
    early    within the list's `machine_window` seconds of the delivery (per reader with
             per_subscriber tracking; otherwise of the edition's first delivery)
    burst    one reader's copy followed BURST_LINKS different links within BURST_SECONDS
             (per_subscriber tracking only: the earlier clicks of the burst are re-marked too)
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from digest.config import ListSettings, Settings, SiteSettings
from digest.edition.clicks import (
    ANONYMOUS,
    ClickLinks,
    read_click_token,
    read_reader_token,
    reader_token,
)
from digest.edition.render import slot_marker
from digest.errors import NotFoundError
from digest.models import Edition, Tracking
from digest.store import ClickRow, Store

BURST_LINKS = 3
BURST_SECONDS = 1.0
# Lower-case fragments of the User-Agents that security gateways and link checkers send.
SCANNER_AGENTS = (
    "bingpreview",
    "barracuda",
    "mimecast",
    "proofpoint",
    "safelinks",
    "microsoft office",
    "ms-office",
    "symantec",
    "forcepoint",
    "trendmicro",
    "sophos",
    "zscaler",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "curl/",
    "wget/",
    "bot",
    "spider",
    "crawler",
    "scan",
)


def machine_reason(
    *,
    method: str,
    user_agent: str,
    clicked_at: datetime,
    delivered_at: datetime | None,
    window: float,
) -> str:
    """Why a click is a machine's ("" for a person's): HEAD, a scanner's agent, too early."""
    if method.upper() == "HEAD":
        return "head"
    agent = user_agent.casefold()
    if not agent or any(fragment in agent for fragment in SCANNER_AGENTS):
        return "scanner"
    if delivered_at is not None and clicked_at < delivered_at + timedelta(seconds=window):
        return "early"
    return ""


class BurstWatch:
    """Remembers each reader's clicks of the last second, to spot a copy that clicks everything."""

    def __init__(self) -> None:
        self._recent: dict[tuple[int, int], deque[tuple[datetime, str]]] = {}
        self._lock = threading.Lock()

    def burst_since(
        self, edition_id: int, subscriber_id: int, article_id: str, now: datetime, links: int
    ) -> datetime | None:
        """The burst's first moment if this click completes one, else None."""
        needed = max(2, min(BURST_LINKS, links))
        horizon = now - timedelta(seconds=BURST_SECONDS)
        with self._lock:
            recent = self._recent.setdefault((edition_id, subscriber_id), deque())
            recent.append((now, article_id))
            while recent and recent[0][0] < horizon:
                recent.popleft()
            if len({article for _, article in recent}) >= needed:
                return recent[0][0]
            if len(self._recent) > 100_000:  # bounded: forget readers who went quiet
                self._recent = {k: v for k, v in self._recent.items() if v[-1][0] >= horizon}
        return None


@dataclass(frozen=True, slots=True)
class Followed:
    """A genuine click: where to send the reader, and the row to count."""

    location: str
    row: ClickRow


class ClickResolver:
    """Reads click tokens against the store; editions and article URLs are cached."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store
        self.secrets = settings.site.unsubscribe_secrets()
        self._editions: dict[tuple[str, str], tuple[Edition, dict[str, str]] | None] = {}
        self._first_sent: dict[int, datetime] = {}
        self.bursts = BurstWatch()

    def _edition(self, list_slug: str, day: str) -> tuple[Edition, dict[str, str]] | None:
        key = (list_slug, day)
        if key not in self._editions:
            edition = self.store.edition_for(list_slug, datetime.fromisoformat(day).date())
            if edition is None:
                return None  # not cached: the edition may be made later
            urls = {a.id: a.url for a in self.store.articles_by_id(edition.article_ids)}
            self._editions[key] = (edition, urls)
        return self._editions[key]

    def _delivered_at(self, edition_id: int, subscriber_id: int | None) -> datetime | None:
        if subscriber_id is not None:
            return self.store.delivered_at(edition_id, subscriber_id)
        if edition_id not in self._first_sent:
            first = self.store.delivered_at(edition_id, None)
            if first is None:
                return None
            self._first_sent[edition_id] = first
        return self._first_sent[edition_id]

    def follow(
        self, token: str, reader: str, *, method: str, user_agent: str, now: datetime, kind: str
    ) -> Followed | None:
        """The click a genuine link names, classified; None for a forged or altered one."""
        click = read_click_token(token, secrets=self.secrets)
        if click is None or (kind == "open") != (click.article_id == ""):
            return None
        try:
            mailing_list = self.settings.list(click.list_slug)
        except NotFoundError:
            return None
        found = self._edition(click.list_slug, click.edition_date.isoformat())
        if found is None:
            return None
        edition, urls = found
        location = urls.get(click.article_id) if kind == "click" else ""
        if location is None:
            return None
        subscriber_id = None
        if reader != ANONYMOUS:
            subscriber_id = read_reader_token(reader, click, secrets=self.secrets)
            if subscriber_id is None:
                return None
            if mailing_list.tracking is not Tracking.PER_SUBSCRIBER:
                subscriber_id = None  # the list stopped counting readers: count the click only
        reason = machine_reason(
            method=method,
            user_agent=user_agent,
            clicked_at=now,
            delivered_at=self._delivered_at(edition.id, subscriber_id),
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
