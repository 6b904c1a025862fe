"""Signed values for the web pages: confirmation links, preference links and CSRF tokens.

A signed value is base64url(version | key id | body | HMAC-SHA256(key, purpose | version |
key id | body)[:16]). The purpose ("confirm", "prefs", "csrf") is part of the MAC, so a value
made for one use never passes as another. Keys come from the same key ring as the unsubscribe
tokens (`SiteSettings.unsubscribe_secrets`), so one rotation covers every link.

The bodies are fixed layouts of big-endian integers followed by UTF-8 text; nothing here
reads a clock: expiry is checked by the caller against the issue time the body carries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from dataclasses import dataclass

_VERSION = 1
_HEAD = struct.Struct(">BB")
_MAC_BYTES = 16
# A confirmation names the subscriber and when it was issued (seconds since the epoch).
_CONFIRM = struct.Struct(">QQ")
_PREFS = struct.Struct(">Q")
_TEXT_SEPARATOR = "\n"


def _mac(secret: bytes, purpose: str, signed: bytes) -> bytes:
    return hmac.new(secret, purpose.encode() + b"\x00" + signed, hashlib.sha256).digest()[
        :_MAC_BYTES
    ]


def sign(body: bytes, *, purpose: str, secret: bytes, key_id: int) -> str:
    """`body` signed for `purpose` with the key numbered `key_id`."""
    signed = _HEAD.pack(_VERSION, key_id) + body
    return base64.urlsafe_b64encode(signed + _mac(secret, purpose, signed)).rstrip(b"=").decode()


def unsign(token: str, *, purpose: str, secrets: dict[int, bytes]) -> bytes | None:
    """The body of a genuine value signed for `purpose`, or None for anything else."""
    if not token.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        return None
    if len(raw) < _HEAD.size + _MAC_BYTES:
        return None
    signed, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    version, key_id = _HEAD.unpack(signed[: _HEAD.size])
    secret = secrets.get(key_id)
    if version != _VERSION or secret is None:
        return None
    if not hmac.compare_digest(mac, _mac(secret, purpose, signed)):
        return None
    return signed[_HEAD.size :]


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What a confirmation link carries: who asked, for which lists, under what name, when."""

    subscriber_id: int
    issued_at: int
    list_slugs: tuple[str, ...]
    name: str = ""


def confirmation_token(confirmation: Confirmation, *, secret: bytes, key_id: int) -> str:
    """The token of a confirmation link."""
    text = _TEXT_SEPARATOR.join((",".join(confirmation.list_slugs), confirmation.name))
    body = _CONFIRM.pack(confirmation.subscriber_id, confirmation.issued_at) + text.encode()
    return sign(body, purpose="confirm", secret=secret, key_id=key_id)


def read_confirmation(token: str, *, secrets: dict[int, bytes]) -> Confirmation | None:
    """The confirmation a genuine token carries (expiry is the caller's to check)."""
    body = unsign(token, purpose="confirm", secrets=secrets)
    if body is None or len(body) < _CONFIRM.size:
        return None
    subscriber_id, issued_at = _CONFIRM.unpack(body[: _CONFIRM.size])
    try:
        slugs, name = body[_CONFIRM.size :].decode().split(_TEXT_SEPARATOR, 1)
    except (UnicodeDecodeError, ValueError):
        return None
    return Confirmation(
        subscriber_id=subscriber_id,
        issued_at=issued_at,
        list_slugs=tuple(slug for slug in slugs.split(",") if slug),
        name=name,
    )


def preferences_token(subscriber_id: int, *, secret: bytes, key_id: int) -> str:
    """The token of a subscriber's preferences link; like an unsubscribe link it never expires."""
    return sign(_PREFS.pack(subscriber_id), purpose="prefs", secret=secret, key_id=key_id)


def read_preferences_token(token: str, *, secrets: dict[int, bytes]) -> int | None:
    """The subscriber id a genuine preferences token names, or None."""
    body = unsign(token, purpose="prefs", secrets=secrets)
    if body is None or len(body) != _PREFS.size:
        return None
    return int(_PREFS.unpack(body)[0])
