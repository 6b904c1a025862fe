"""Signed tokens: unsubscribe links and stable Message-IDs, bound to one subscriber and one list.

A token is base64url(version | key id | subscriber id | HMAC-SHA256(key, same bytes | list)[:16]).
It carries no address, never expires (old mails must keep working), and names its key so the
secret can be rotated while links signed with the old key still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

_VERSION = 1
_HEAD = struct.Struct(">BBQ")
_MAC_BYTES = 16


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
    *, secret: bytes, domain: str, list_slug: str, edition_key: str, subscriber_id: int
) -> str:
    """A Message-ID that is the same for every attempt at one (edition, subscriber) delivery,
    and known before the edition is stored, so a preview shows the very ID that will be sent.

    The short HMAC keeps IDs unique across installations that reuse the same numbers.
    """
    tag = hmac.new(
        secret, f"mid:{list_slug}:{edition_key}:{subscriber_id}".encode(), hashlib.sha256
    ).hexdigest()[:12]
    return f"<{list_slug}.{edition_key}.{subscriber_id}.{tag}@{domain}>"
