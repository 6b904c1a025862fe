"""Signed tokens: unsubscribe links and stable Message-IDs, bound to one subscriber and one list.

A Message-ID of ours is `<list.YYYYMMDD.subscriber.tag@domain>`; `message_id` writes it and
`read_message_id` reads it back (bounce reports quote it), so the format lives here only.

A token is base64url(version | key id | subscriber id | HMAC-SHA256(key, same bytes | list)[:16]).
It carries no address, never expires (old mails must keep working), and names its key so the
secret can be rotated while links signed with the old key still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from datetime import date, datetime

_VERSION = 1
_HEAD = struct.Struct(">BBQ")
_MAC_BYTES = 16
_DAY = "%Y%m%d"
_OUR_ID = re.compile(r"^<([a-z0-9][a-z0-9-]{0,62})\.(\d{8})\.(\d{1,18})\.[0-9a-f]{12}@[^<>@\s]+>$")


def _mac(secret: bytes, head: bytes, list_slug: str) -> bytes:
    return hmac.new(secret, head + list_slug.encode(), hashlib.sha256).digest()[:_MAC_BYTES]


def unsubscribe_token(*, secret: bytes, key_id: int, subscriber_id: int, list_slug: str) -> str:
    """An opaque, unforgeable token that unsubscribes this subscriber from this list only."""
    head = _HEAD.pack(_VERSION, key_id, subscriber_id)
    return base64.urlsafe_b64encode(head + _mac(secret, head, list_slug)).rstrip(b"=").decode()


def read_unsubscribe_token(token: str, *, list_slug: str, secrets: dict[int, bytes]) -> int | None:
    """The subscriber id a genuine token names, or None for anything forged, altered or foreign."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return None
    if len(raw) != _HEAD.size + _MAC_BYTES:
        return None
    head, mac = raw[: _HEAD.size], raw[_HEAD.size :]
    version, key_id, subscriber_id = _HEAD.unpack(head)
    secret = secrets.get(key_id)
    if version != _VERSION or secret is None:
        return None
    return subscriber_id if hmac.compare_digest(mac, _mac(secret, head, list_slug)) else None


def message_id(
    *, secret: bytes, domain: str, list_slug: str, edition_date: date, subscriber_id: int
) -> str:
    """A Message-ID that is the same for every attempt at one (edition, subscriber) delivery,
    and known before the edition is stored, so a preview shows the very ID that will be sent.

    The short HMAC keeps IDs unique across installations that reuse the same numbers.
    """
    edition_key = edition_date.strftime(_DAY)
    tag = hmac.new(
        secret, f"mid:{list_slug}:{edition_key}:{subscriber_id}".encode(), hashlib.sha256
    ).hexdigest()[:12]
    return f"<{list_slug}.{edition_key}.{subscriber_id}.{tag}@{domain}>"


def read_message_id(value: str | None) -> tuple[str, date, int] | None:
    """(list, edition date, subscriber id) from a Message-ID of our shape, else None.

    The tag is not checked: only the ledger, which holds the IDs really sent, can vouch for one.
    """
    found = _OUR_ID.match(value or "")
    if found is None:
        return None
    try:
        day = datetime.strptime(found[2], _DAY).date()
    except ValueError:
        return None
    return found[1], day, int(found[3])
