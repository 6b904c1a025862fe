"""Click links: `/c/<click token>/<reader token>` on the site's own domain, signed.

The click token signs (list, edition date, article id) and is made once per edition at render
time; the reader token signs (list, edition date, subscriber id) and fills the `reader` slot of
each copy only when the list's tracking is "per_subscriber" (otherwise the slot is "-"). Both
come from `digest.edition.signing`, so a token altered by one bit, or moved to another edition,
reads as nothing and redirects nowhere: the target URL is the stored article's, never the link's.

Pages that show an edition on the site put a word of their own in the reader part instead:
ARCHIVE on the public archive, PREVIEW in the editor's preview, so their clicks are told from
the mail's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import date

from digest.edition.signing import sign, unsign

ANONYMOUS = "-"
ARCHIVE, PREVIEW = "archive", "preview"
# The kind of click row an archive page's link records (the mail's are "click").
ARCHIVE_CLICK = "archive"
_DAY = struct.Struct(">I")
_READER = struct.Struct(">IQ")
_SEPARATOR = "\n"


@dataclass(frozen=True, slots=True)
class Click:
    """What a genuine click token names."""

    list_slug: str
    edition_date: date
    article_id: str


def click_token(click: Click, *, secret: bytes, key_id: int) -> str:
    """The token of one article's link in one edition."""
    body = _DAY.pack(click.edition_date.toordinal()) + _SEPARATOR.join(
        (click.list_slug, click.article_id)
    ).encode("utf-8")
    return sign(body, purpose="click", secret=secret, key_id=key_id)


def read_click_token(token: str, *, secrets: dict[int, bytes]) -> Click | None:
    """The click a genuine token names, or None for anything forged or altered."""
    body = unsign(token, purpose="click", secrets=secrets)
    if body is None or len(body) < _DAY.size:
        return None
    try:
        slug, article_id = body[_DAY.size :].decode("utf-8").split(_SEPARATOR, 1)
        day = date.fromordinal(_DAY.unpack(body[: _DAY.size])[0])
    except (UnicodeDecodeError, ValueError, OverflowError):
        return None
    return Click(list_slug=slug, edition_date=day, article_id=article_id)


def reader_token(
    subscriber_id: int, *, list_slug: str, edition_date: date, secret: bytes, key_id: int
) -> str:
    """The token naming one subscriber's copy of one edition (per_subscriber tracking)."""
    body = _READER.pack(edition_date.toordinal(), subscriber_id) + list_slug.encode("utf-8")
    return sign(body, purpose="reader", secret=secret, key_id=key_id)


def read_reader_token(token: str, click: Click, *, secrets: dict[int, bytes]) -> int | None:
    """The subscriber id a genuine reader token of the click's edition names, else None."""
    body = unsign(token, purpose="reader", secrets=secrets)
    if body is None or len(body) < _READER.size:
        return None
    ordinal, subscriber_id = _READER.unpack(body[: _READER.size])
    same = body[_READER.size :] == click.list_slug.encode("utf-8")
    return int(subscriber_id) if same and ordinal == click.edition_date.toordinal() else None


@dataclass(frozen=True, slots=True)
class ClickLinks:
    """Turns an article into its counted link for one edition (what the renderer calls)."""

    base_url: str
    list_slug: str
    edition_date: date
    secret: bytes
    key_id: int
    # The reader slot's marker, or "-" when links name no reader (aggregate tracking).
    reader: str = ANONYMOUS
    # An open pixel too (lists with opens = true).
    opens: bool = False

    def url(self, article_id: str) -> str:
        """The counted link to the article."""
        token = click_token(
            Click(self.list_slug, self.edition_date, article_id),
            secret=self.secret,
            key_id=self.key_id,
        )
        return f"{self.base_url}/c/{token}/{self.reader}"

    def open_url(self) -> str | None:
        """The open pixel's address, or None when the list counts no opens."""
        if not self.opens:
            return None
        token = click_token(
            Click(self.list_slug, self.edition_date, ""), secret=self.secret, key_id=self.key_id
        )
        return f"{self.base_url}/o/{token}/{self.reader}"
