"""Subscriber input made safe: one valid address, a clean name, a known time zone."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from digest.errors import InvalidInputError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAME_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Person:
    """A subscriber as given, after validation."""

    email: str
    name: str
    locale: str
    timezone: str


def normalise_address(raw: str) -> str:
    """One ASCII addr-spec, domain lower-cased (IDNs as A-labels); no DNS lookup.

    Raises InvalidInputError with the validator's reason for lists, display names, CR/LF,
    non-ASCII local parts (they would need SMTPUTF8) and plain typos.
    """
    # Control characters are refused before stripping: a line break is no typo but a form
    # or a file that was tampered with, and must not slip through as a trimmed address.
    if _CONTROL.search(raw):
        raise InvalidInputError(f"{raw!r} contains control characters")
    candidate = raw.strip()
    try:
        checked = validate_email(candidate, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidInputError(f"{candidate!r} is not a valid address: {exc}") from exc
    return checked.ascii_email or checked.normalized


def clean_name(raw: str) -> str:
    """The display name with control characters removed and white space folded."""
    name = " ".join(_CONTROL.sub(" ", unicodedata.normalize("NFC", raw)).split())
    if len(name) > _NAME_LIMIT:
        raise InvalidInputError(f"name {name[:30]!r}... is longer than {_NAME_LIMIT} characters")
    return name


def check_timezone(raw: str) -> str:
    """An IANA zone name, or '' for 'use the list's'."""
    zone = raw.strip()
    if not zone:
        return ""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInputError(f"unknown time zone {zone!r}") from exc
    return zone


def person(*, email: str, name: str = "", locale: str = "", timezone: str = "") -> Person:
    """Validate one subscriber's fields together."""
    return Person(
        email=normalise_address(email),
        name=clean_name(name),
        locale=locale.strip()[:35],
        timezone=check_timezone(timezone),
    )
