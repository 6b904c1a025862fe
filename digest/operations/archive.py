"""Editions as web pages: the public archive of sent editions and the editor's preview.

Both fill the per-subscriber slots neutrally (the greeting fallback, and unsubscribe and
preferences links to a page that explains where the real ones are), so no page ever shows one
reader's link. Their counted links name the page instead of a copy of the mail (ARCHIVE,
PREVIEW: see `digest.operations.clicks`), so a visitor's click is not counted as a
recipient's. Both only read: nothing is stored, queued or sent.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date, datetime

from digest.config import Settings
from digest.edition.clicks import ANONYMOUS, ARCHIVE, PREVIEW
from digest.edition.render import Renderer, fill_slots
from digest.operations.editions import archive_path, draft_edition, edition_date
from digest.store import Store

# The generic page an archived edition's "Unsubscribe" and "Manage your subscription" links open.
GENERIC_UNSUBSCRIBE_PATH = "/unsubscribe"


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """One line of a list's archive index."""

    edition_date: date
    subject: str
    path: str


@dataclass(frozen=True, slots=True)
class EditionPage:
    """An edition's HTML with neutral slot values, and whether it was a stored edition."""

    html: str
    edition_date: date
    stored: bool


def neutral_values(settings: Settings, *, for_html: bool, page: str = ANONYMOUS) -> dict[str, str]:
    """Slot values for a copy that belongs to nobody: the fallback greeting, generic links,
    and `page` (ARCHIVE, PREVIEW) where per_subscriber links name the reader."""
    site = settings.site
    generic = site.base_url + GENERIC_UNSUBSCRIBE_PATH
    values = {
        "greeting": site.greeting_fallback,
        "unsubscribe": generic,
        "preferences": generic,
        "reader": page,
    }
    return {k: html.escape(v) for k, v in values.items()} if for_html else values


def page_links(document: str, base_url: str, page: str) -> str:
    """The document's counted links and pixel naming `page` instead of no reader ("-")."""
    # Links of lists that count no readers are written with "-" once per edition, not as a
    # slot; a token is base64url, so the pattern cannot reach past its link.
    pattern = re.compile(re.escape(base_url) + r"/([co])/([A-Za-z0-9_-]+)/" + re.escape(ANONYMOUS))
    return pattern.sub(lambda m: f"{base_url}/{m[1]}/{m[2]}/{page}", document)


def _neutral(settings: Settings, document: str, nonce: str, *, page: str) -> str:
    filled = fill_slots(document, nonce, neutral_values(settings, for_html=True, page=page))
    return page_links(filled, settings.site.base_url, page)


def archive_index(store: Store, list_slug: str) -> list[ArchiveEntry]:
    """The list's sent editions, newest first."""
    return [
        ArchiveEntry(edition_date=day, subject=subject, path=archive_path(list_slug, day))
        for day, subject in store.archived_editions(list_slug)
    ]


def archived_page(settings: Settings, store: Store, list_slug: str, day: date) -> str | None:
    """The HTML of the list's edition of `day` as the archive shows it, or None."""
    edition = store.archived_edition(list_slug, day)
    if edition is None:
        return None
    return _neutral(settings, edition.html, edition.slot_nonce, page=ARCHIVE)


def editor_preview(
    settings: Settings, store: Store, renderer: Renderer, list_slug: str, *, now: datetime
) -> EditionPage:
    """What `send` would deliver at `now`: the stored edition of that date, else a draft."""
    mailing_list = settings.list(list_slug)
    stored = store.edition_for(list_slug, edition_date(mailing_list, now))
    if stored is not None:
        return EditionPage(
            html=_neutral(settings, stored.html, stored.slot_nonce, page=PREVIEW),
            edition_date=stored.edition_date,
            stored=True,
        )
    draft = draft_edition(settings.site, store, renderer, mailing_list, now=now)
    return EditionPage(
        html=_neutral(settings, draft.html, draft.slot_nonce, page=PREVIEW),
        edition_date=draft.edition_date,
        stored=False,
    )
