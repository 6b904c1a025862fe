"""What several sections check alike: slugs, addresses, one-line header text, frozen sections."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
HEADER_UNSAFE = re.compile(r"[\r\n\x00]")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}")


class Section(BaseModel):
    """A settings table: unknown keys are mistakes, and settings never change once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def safe_header_text(value: str) -> str:
    """Refuse text that could break out of the header it is written into."""
    if HEADER_UNSAFE.search(value):
        raise ValueError("must not contain CR, LF or NUL")
    return value


def slug(value: str) -> str:
    """Refuse a name that cannot be part of a URL, a file name and a Message-ID as it is."""
    if not _SLUG.fullmatch(value):
        raise ValueError("use lower-case letters, digits and hyphens")
    return value


def address(value: str) -> str:
    """Refuse what is not a plain addr-spec: it goes into headers and SMTP envelopes."""
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


def domain_name(value: str) -> str:
    """Refuse what is not a fully qualified DNS name: it ends Message-IDs, List-Ids and
    addresses, where a stray character shows only when a receiver rejects the mail."""
    if len(value) > 253 or not _DOMAIN.fullmatch(value):
        raise ValueError(f"{value!r} is not a domain name such as 'example.hu'")
    return value


def http_url(value: str) -> str:
    """Refuse a link that readers' mail programs would not open."""
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value
