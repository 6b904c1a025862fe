"""Shaping a list's draft edition: read the shape of today's date, change it, keep it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from digest.config import Settings
from digest.edition.note import editor_note
from digest.edition.render import Renderer
from digest.edition.selection import Selection
from digest.errors import NotFoundError
from digest.models import EditionShape
from digest.operations.editions import draft_edition, edition_date
from digest.store import Store

Change = Callable[[EditionShape], EditionShape]


def reshape(
    settings: Settings, store: Store, list_slug: str, change: Change, *, now: datetime
) -> EditionShape:
    """Apply `change` to the shape of the list's edition for today's date at `now` and keep it;
    refused once that edition is made (the shape applies to the draft)."""
    day = edition_date(settings.list(list_slug), now)
    shape = change(store.edition_shape(list_slug, day))
    store.set_shape(list_slug, day, shape, now=now)
    return shape


def draft_selection(
    settings: Settings, store: Store, renderer: Renderer, list_slug: str, *, now: datetime
) -> Selection:
    """The stories of the list's draft as it stands (what a section move is relative to)."""
    return draft_edition(
        settings.site, store, renderer, settings.list(list_slug), now=now
    ).selection


def known_article(store: Store, article_id: str) -> str:
    """The id, if such an article is stored: a typo must not pass silently as a change."""
    if not store.articles_by_id([article_id]):
        raise NotFoundError(f"no article with id {article_id!r}")
    return article_id


def set_today_note(
    settings: Settings, store: Store, list_slug: str, markdown: str, *, now: datetime
) -> None:
    """Set (or with a blank text remove) the editor's note of the list's draft edition."""
    day = edition_date(settings.list(list_slug), now)
    text = editor_note(markdown).markdown if markdown.strip() else None
    store.set_note(list_slug, day, text, now=now)
