"""DNS as a DKIM verifier (dkimpy) asks it, answering from the records `digest dkim keygen`
made: only the names given, each by its full name with the trailing dot."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from digest.mail.dkim import GeneratedKey


def resolver(*keys: GeneratedKey) -> Callable[..., bytes]:
    """dkimpy's `dnsfunc` for these keys' TXT records (chunks joined, as receivers do)."""
    records = {f"{key.record_name}.".encode(): "".join(key.chunks).encode() for key in keys}

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        return records[name]

    return lookup


def zone_resolver(*zone_files: Path) -> Callable[..., bytes]:
    """dkimpy's `dnsfunc` for the zone-file entries `digest dkim keygen` wrote
    (`NAME. IN TXT ( "chunk" "chunk" )`), read as an operator would paste them."""
    records = {}
    for path in zone_files:
        text = path.read_text(encoding="ascii")
        records[text.split()[0].encode()] = "".join(re.findall(r'"([^"]*)"', text)).encode()

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        return records[name]

    return lookup
