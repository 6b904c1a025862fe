"""Signed tokens: unsubscribe links and stable Message-IDs, bound to one subscriber and one list.

A Message-ID of ours is `<list.YYYYMMDD.sealed.tag@domain>`; `message_id` writes it and
`read_message_id` reads it back (bounce reports quote it), so the format lives here only.
`sealed` is the subscriber id enciphered with the install's secret (a 64-bit Feistel network
keyed per list and day), so an ID shows no sequential number and no two installs share one.

A token is base64url(version | key id | subscriber id | HMAC-SHA256(key, same bytes | list)[:16]).
It carries no address, never expires (old mails must keep working), and names its key so the
secret can be rotated while links signed with the old key still verify.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import struct
from collections.abc import Callable, Iterable
from datetime import date, datetime

_VERSION = 1
_HEAD = struct.Struct(">BBQ")
_MAC_BYTES = 16
_DAY = "%Y%m%d"
_OUR_ID = re.compile(
    r"<([a-z0-9][a-z0-9-]{0,62})\.(\d{8})\.([a-z2-7]{13})\.([a-z2-7]{10})@[^<>@\s]+>"
)
_ROUNDS = 4
_HALF = 0xFFFFFFFF


@functools.lru_cache(maxsize=256)
def _keyed(key: bytes) -> hmac.HMAC:
    return hmac.new(key, digestmod=hashlib.sha256)


def _hmac(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 from a state keyed once per key. Cheaper than `hmac.digest`, which also
    lets go of the GIL on every call: a hand-off per token for the sending threads."""
    mac = _keyed(key).copy()
    mac.update(data)
    return mac.digest()


def _mac(secret: bytes, head: bytes, list_slug: str) -> bytes:
    return _hmac(secret, head + list_slug.encode())[:_MAC_BYTES]


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


@functools.lru_cache(maxsize=64)  # one set per list and day: a send derives it once
def _round_keys(secret: bytes, list_slug: str, edition_key: str) -> tuple[hmac.HMAC, ...]:
    return tuple(
        _keyed(_hmac(secret, f"seal:{list_slug}:{edition_key}:{n}".encode()))
        for n in range(_ROUNDS)
    )


def _mix(key: hmac.HMAC, half: int) -> int:
    mac = key.copy()
    mac.update(half.to_bytes(4, "big"))
    return int.from_bytes(mac.digest()[:4])


def _seal(subscriber_id: int, keys: tuple[hmac.HMAC, ...]) -> int:
    left, right = subscriber_id >> 32, subscriber_id & _HALF
    for key in keys:
        left, right = right, left ^ _mix(key, right)
    return (left << 32) | right


def _unseal(sealed: int, keys: tuple[hmac.HMAC, ...]) -> int:
    left, right = sealed >> 32, sealed & _HALF
    for key in reversed(keys):
        left, right = right ^ _mix(key, left), left
    return (left << 32) | right


_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
_BASE32_PAIRS = [first + second for first in _BASE32 for second in _BASE32]


def _base32(data: bytes) -> str:
    """Lower-case unpadded base32 (RFC 4648): shorter than hex, so the header stays within 78
    columns. Ten bits a step; `base64.b32encode` costs several times as much per ID."""
    bits = len(data) * 8
    chars = -(-bits // 5)
    steps = -(-chars // 2)
    value = int.from_bytes(data) << (steps * 10 - bits)
    pairs = _BASE32_PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(steps * 10 - 10, -1, -10)])[
        :chars
    ]


def _tag(secret: bytes, list_slug: str, edition_key: str, subscriber_id: int) -> str:
    text = f"mid:{list_slug}:{edition_key}:{subscriber_id}".encode()
    return _base32(_hmac(secret, text)[:6])


def message_ids(
    *, secret: bytes, domain: str, list_slug: str, edition_date: date
) -> Callable[[int], str]:
    """`message_id` for the subscribers of one edition, with what they share worked out once:
    queueing a big list makes one per subscriber."""
    edition_key = edition_date.strftime(_DAY)
    keys = _round_keys(secret, list_slug, edition_key)
    tag_prefix = f"mid:{list_slug}:{edition_key}:".encode()
    tag_key = _keyed(secret)
    head, tail = f"<{list_slug}.{edition_key}.", f"@{domain}>"

    def one(subscriber_id: int) -> str:
        tag = tag_key.copy()
        tag.update(tag_prefix + str(subscriber_id).encode())
        sealed = _base32(_seal(subscriber_id, keys).to_bytes(8, "big"))
        return f"{head}{sealed}.{_base32(tag.digest()[:6])}{tail}"

    return one


def message_id(
    *, secret: bytes, domain: str, list_slug: str, edition_date: date, subscriber_id: int
) -> str:
    """A Message-ID that is the same for every attempt at one (edition, subscriber) delivery,
    and known before the edition is stored, so a preview shows the very ID that will be sent.

    Only the install's secret turns it back into the subscriber, and its tag says which secret.
    """
    ids = message_ids(secret=secret, domain=domain, list_slug=list_slug, edition_date=edition_date)
    return ids(subscriber_id)


def read_message_id(value: str | None, *, secrets: Iterable[bytes]) -> tuple[str, date, int] | None:
    """(list, edition date, subscriber id) from a Message-ID one of `secrets` (the current
    unsubscribe key and the retired ones) made, else None.

    A match is a claim, not proof: only the ledger, which holds the IDs really sent, vouches.
    """
    found = _OUR_ID.fullmatch((value or "").strip())
    if found is None:
        return None
    try:
        day = datetime.strptime(found[2], _DAY).date()
    except ValueError:
        return None
    list_slug, edition_key = found[1], found[2]
    sealed = int.from_bytes(base64.b32decode(found[3].upper() + "===")[:8], "big")
    for secret in secrets:
        subscriber_id = _unseal(sealed, _round_keys(secret, list_slug, edition_key))
        if hmac.compare_digest(found[4], _tag(secret, list_slug, edition_key, subscriber_id)):
            return list_slug, day, subscriber_id
    return None
