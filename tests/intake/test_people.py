"""Address checks: the fast path for plain addresses decides exactly as email-validator does."""

from __future__ import annotations

import random

import pytest
from email_validator import EmailNotValidError, validate_email

from digest.errors import InvalidInputError
from digest.intake.people import normalise_address

_PIECES = [
    "a", "Z", "0", ".", "..", "-", "_", "+", "'", "!", "#", "$", "%", "&", "*", "/", "=", "?",
    "^", "`", "{", "|", "}", "~", "@", " ", '"', "(", ")", ",", ":", ";", "<", ">", "[", "]",
    "\\", "é", "ő", "xn--", "ß", "\u00a0",
]  # fmt: skip
_DOMAINS = [
    "example.hu", "Example.HU", "gmail.com", "sub.domain.co.uk", "münchen.de", "xn--mnchen-3ya.de",
    "localhost", "example", "-bad.hu", "bad-.hu", "a..hu", "ex_ample.hu", "[127.0.0.1]", "1.2.3.4",
    "example.test", "example.invalid", "a" * 64 + ".hu", ("a" * 63 + ".") * 4 + "hu", "", "hu.",
    ".hu", "exa mple.hu", "例え.jp",
]  # fmt: skip


def _reference(address: str) -> str | None:
    """What email-validator alone makes of the address (None: refused)."""
    try:
        checked = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return checked.ascii_email or checked.normalized


def _ours(address: str) -> str | None:
    try:
        return normalise_address(address)
    except InvalidInputError:
        return None


def _addresses(count: int) -> list[str]:
    chance = random.Random(2026)
    found = []
    for _ in range(count):
        plain = chance.random() < 0.6  # most real local parts: letters, digits, a dot or two
        pieces = ["anna", "B", "7", "."] if plain else _PIECES
        local = "".join(chance.choice(pieces) for _ in range(chance.randint(0, 8)))
        if chance.random() < 0.05:
            local = "x" * chance.choice([63, 64, 65])
        found.append(f"{local}@{chance.choice(_DOMAINS)}")
    return found


def test_plain_and_odd_addresses_get_the_validators_verdict() -> None:
    addresses = [
        *_addresses(6000),
        "anna@example.hu",
        " Anna.Kovacs@Example.HU ",
        "o'brien+news@example.ie",
        "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + "." + "e" * 50 + ".hu",
        "a" * 60 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + "." + "e" * 57 + ".hu",
        "Anna <anna@example.hu>",
        "anna@@example.hu",
        "anna.@example.hu",
        ".anna@example.hu",
    ]
    disagreements = [(a, _ours(a), _reference(a)) for a in addresses if _ours(a) != _reference(a)]
    assert not disagreements[:5]
    accepted = sum(_reference(a) is not None for a in addresses)
    assert 500 < accepted < len(addresses) - 500  # both verdicts were really exercised


@pytest.mark.parametrize(
    "address",
    ["anna@localhost", "anna@example", "anna@ex_ample.hu", "anna@-bad.hu", "anna@exa mple.hu"],
)
def test_a_refused_plain_address_gives_the_validators_reason(address: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        normalise_address(address)
    with pytest.raises(EmailNotValidError) as reference:
        validate_email(address, check_deliverability=False, allow_smtputf8=False)
    assert str(reference.value) in str(caught.value)
