"""DKIM "relaxed" canonicalisation (RFC 6376 3.4.2, 3.4.4) of the exact bytes SMTP will carry.

The signer hashes what these functions return, so they run per subscriber: the header fields
that repeat in every message of an edition are canonicalised once (a small cache keyed by the
raw field), and a body that is already canonical, as our quoted-printable bodies always are, is
recognised by three searches and hashed as it is; one with runs of spaces (the text part's
indented lines) takes one substitution pass.
"""

from __future__ import annotations

import re
from functools import lru_cache

from digest.errors import InvalidInputError

_WSP_RUN = re.compile(rb"[ \t]+")
_SPACES = re.compile(rb"  +")
_SPACE_EOL = re.compile(rb" \r\n")  # sre finds this faster than `in` does, among many spaces
# Every header field of one edition's messages, with room for the per-subscriber ones of the
# messages in flight: beyond that the cache only evicts what will not come back.
_FIELD_CACHE = 512


def split_message(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The header fields as (lower-case name, raw field with its CRLF) and the body.

    Raises InvalidInputError for a line that is neither a field nor a continuation: signing
    something a receiver parses differently would give a signature that fails for no clear reason.
    """
    end = message.find(b"\r\n\r\n")
    if end < 0:
        head, body = message if message.endswith(b"\r\n") else message + b"\r\n", b""
    else:
        head, body = message[: end + 2], message[end + 4 :]
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise InvalidInputError("cannot DKIM-sign: the header starts with a folded line")
            name, raw = fields[-1]
            fields[-1] = (name, raw + line + b"\r\n")
            continue
        name, colon, _ = line.partition(b":")
        if not colon or not name or b"\n" in line or b"\r" in line:
            raise InvalidInputError(f"cannot DKIM-sign: {line[:60]!r} is not a header field")
        fields.append((name.rstrip(b" \t").lower(), line + b"\r\n"))
    return fields, body


def relaxed_field(raw: bytes) -> bytes:
    """`name:value\r\n` with the name lower-cased and the value unfolded, its runs of
    whitespace one space, and none at either end (RFC 6376 3.4.2)."""
    name, _, value = raw.partition(b":")
    value = _WSP_RUN.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")
    return name.rstrip(b" \t").lower() + b":" + value + b"\r\n"


# The fields of one edition's messages repeat in every message: each is canonicalised once.
cached_relaxed_field = lru_cache(maxsize=_FIELD_CACHE)(relaxed_field)


def relaxed_lines(chunk: bytes) -> bytes:
    """Whole lines (`chunk` starts a line and ends with CRLF, or is empty) with no whitespace
    before line ends and runs of whitespace as one space: the line rules of RFC 6376 3.4.4,
    which never look past a CRLF, so a body canonicalises chunk by chunk."""
    # Searches that stop at the first hit, then one pass each: the text part indents lines with
    # spaces, and a regex that visits each of the thousands of single spaces costs ~0.5 ms.
    if b"\t" in chunk:
        chunk = chunk.replace(b"\t", b" ")
    first = chunk.find(b"  ")
    if first >= 0:  # only between the first run and the last: here, the text part's indents
        last = chunk.rfind(b"  ") + 2
        chunk = chunk[:first] + _SPACES.sub(b" ", chunk[first:last]) + chunk[last:]
    if _SPACE_EOL.search(chunk):  # the runs are single spaces now
        chunk = chunk.replace(b" \r\n", b"\r\n")
    return chunk


def relaxed_body(body: bytes) -> bytes:
    """The body with no whitespace before line ends, runs of whitespace as one space, and no
    empty lines at the end (RFC 6376 3.4.4); an empty body stays empty (erratum 3133)."""
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"  # the transport ends the last line before the final "."
    body = relaxed_lines(body)
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    if end == 0:
        return b""
    return body if end == len(body) - 2 else body[: end + 2]
