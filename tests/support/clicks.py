"""The counted link a list's edition carries for an article (tracking on, as configured)."""

from __future__ import annotations

from datetime import date

from digest.config import Settings
from digest.operations.clicks import click_links
from digest.operations.editions import slot_nonce


def counted(settings: Settings, list_slug: str, day: date, article_id: str, url: str) -> str:
    """The article's link in that edition: its /c/ link, or `url` with tracking off."""
    links = click_links(
        settings.site,
        settings.list(list_slug),
        day,
        nonce=slot_nonce(settings.site, list_slug, day),
    )
    return links.url(article_id) if links else url
