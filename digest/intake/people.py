"""Subscriber input made safe: one valid address, a clean name, a known time zone."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from digest.errors import InvalidInputError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# RFC 5322 dot-atom: the local part nearly every real address has, valid whatever the domain.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_LOCAL_LIMIT = 64  # octets (RFC 5321 4.5.3.1.1)
_ADDRESS_LIMIT = 254  # RFC 3696 errata 1690
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
    local, at, domain = candidate.rpartition("@")
    if at and len(local) <= _LOCAL_LIMIT and _DOT_ATOM.fullmatch(local):
        ascii_domain = _checked_domain(domain)
        if ascii_domain and len(local) + 1 + len(ascii_domain) <= _ADDRESS_LIMIT:
            return f"{local}@{ascii_domain}"
    try:
        checked = validate_email(candidate, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidInputError(f"{candidate!r} is not a valid address: {exc}") from exc
    return checked.ascii_email or checked.normalized


@functools.lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> str:
    """The domain as validate_email normalises it ('' if it refuses it), checked once: a list of
    a million readers has a few thousand domains, and the domain is most of the validator's work.
    """
    try:
        return validate_email(
            f"x@{domain}", check_deliverability=False, allow_smtputf8=False
        ).ascii_domain
    except EmailNotValidError:
        return ""


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
