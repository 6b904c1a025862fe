"""VERP: an envelope sender per message, `local+token@domain`, that names what it returns.

A bounce goes to the envelope sender, so its recipient address alone tells which edition and
subscriber it concerns, even when the reporting MTA quotes nothing of the original.

The token is 32 characters of lower-case base32 (relays may lower-case a local part, and
base32 survives that) of 20 bytes: the edition id (32 bits) and subscriber id (64 bits)
enciphered with a pad derived from their MAC, then the MAC itself, HMAC-SHA256 with the
install's secret truncated to 8 bytes. It shows no sequential id, changes whenever either id
does, is the same for every attempt at one delivery, and cannot be made without the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from collections.abc import Iterable

_IDS = struct.Struct(">IQ")
_MAC_BYTES = 8
TOKEN_LENGTH = 32  # base32 characters of the 20 bytes
_SHAPE = re.compile(rf"\+([a-z2-7]{{{TOKEN_LENGTH}}})@", re.IGNORECASE)
LOCAL_PART_LIMIT = 64  # octets (RFC 5321 4.5.3.1.1)


def _mac(secret: bytes, ids: bytes) -> bytes:
    return hmac.new(secret, b"verp:" + ids, hashlib.sha256).digest()[:_MAC_BYTES]


def _pad(secret: bytes, mac: bytes) -> bytes:
    return hmac.new(secret, b"verp-pad:" + mac, hashlib.sha256).digest()[: _IDS.size]


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


def verp_token(*, secret: bytes, edition_id: int, subscriber_id: int) -> str:
    """The token of one (edition, subscriber) delivery."""
    ids = _IDS.pack(edition_id, subscriber_id)
    mac = _mac(secret, ids)
    return base64.b32encode(_xor(ids, _pad(secret, mac)) + mac).decode().lower()


def verp_address(base: str, *, secret: bytes, edition_id: int, subscriber_id: int) -> str:
    """`base` (local@domain) as `local+token@domain` for this delivery."""
    local, _, domain = base.rpartition("@")
    token = verp_token(secret=secret, edition_id=edition_id, subscriber_id=subscriber_id)
    return f"{local}+{token}@{domain}"


def find_verp_token(address: str) -> str | None:
    """The token in an address of VERP shape, lower-cased; None for any other address.

    Shape only: whether the token is genuine is `read_verp_token`'s to say.
    """
    found = _SHAPE.search(address)
    return found[1].lower() if found else None


def read_verp_token(token: str, *, secrets: Iterable[bytes]) -> tuple[int, int] | None:
    """(edition id, subscriber id) from a token one of `secrets` made; None if forged,
    altered, or made by another install."""
    try:
        raw = base64.b32decode(token.upper())
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _IDS.size + _MAC_BYTES:
        return None
    sealed, mac = raw[: _IDS.size], raw[_IDS.size :]
    for secret in secrets:
        ids = _xor(sealed, _pad(secret, mac))
        if hmac.compare_digest(mac, _mac(secret, ids)):
            edition_id, subscriber_id = _IDS.unpack(ids)
            return edition_id, subscriber_id
    return None
