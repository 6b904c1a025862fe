"""VERP tokens: signed, opaque, case-proof, one per delivery (EMAIL.md #67)."""

from __future__ import annotations

import re

import pytest

from digest.edition.verp import (
    LOCAL_PART_LIMIT,
    find_verp_token,
    read_verp_token,
    verp_address,
    verp_token,
)

KEY = b"k" * 32
BASE = "bounces@bounces.budapestpost.example"


def test_the_address_round_trips_and_fits_a_local_part() -> None:
    address = verp_address(BASE, secret=KEY, edition_id=7, subscriber_id=1042)
    local, _, domain = address.rpartition("@")
    assert domain == "bounces.budapestpost.example" and local.startswith("bounces+")
    assert len(local) <= LOCAL_PART_LIMIT
    token = find_verp_token(address)
    assert token is not None and read_verp_token(token, secrets=[KEY]) == (7, 1042)


def test_a_relay_that_changes_the_case_changes_nothing() -> None:
    address = verp_address(BASE, secret=KEY, edition_id=7, subscriber_id=1042)
    for spelt in (address.upper(), address.lower(), address.title()):
        token = find_verp_token(spelt)
        assert token is not None and read_verp_token(token, secrets=[KEY]) == (7, 1042)


def test_the_token_shows_no_id_and_differs_per_delivery() -> None:
    tokens = {
        verp_token(secret=KEY, edition_id=e, subscriber_id=s) for e in (1, 2) for s in (1, 2, 3)
    }
    assert len(tokens) == 6
    one = verp_token(secret=KEY, edition_id=1, subscriber_id=1)
    two = verp_token(secret=KEY, edition_id=1, subscriber_id=2)
    # Neighbouring ids share no run of characters, as a counter in clear would.
    assert not {one[i : i + 4] for i in range(29)} & {two[i : i + 4] for i in range(29)}
    assert re.fullmatch(r"[a-z2-7]{32}", one)
    assert verp_token(secret=KEY, edition_id=1, subscriber_id=1) == one  # every attempt alike


@pytest.mark.parametrize("position", [0, 5, 12, 20, 31], ids=lambda p: f"char-{p}")
def test_an_altered_character_is_refused(position: int) -> None:
    token = verp_token(secret=KEY, edition_id=7, subscriber_id=1042)
    other = "a" if token[position] != "a" else "b"
    altered = token[:position] + other + token[position + 1 :]
    assert read_verp_token(altered, secrets=[KEY]) is None


def test_other_secrets_and_retired_ones() -> None:
    token = verp_token(secret=b"old", edition_id=3, subscriber_id=9)
    assert read_verp_token(token, secrets=[b"new"]) is None
    assert read_verp_token(token, secrets=[b"new", b"old"]) == (3, 9)  # a rotated key
    assert read_verp_token("not a token", secrets=[KEY]) is None
    assert read_verp_token("a" * 32, secrets=[KEY]) is None


@pytest.mark.parametrize(
    "address",
    [
        "bounces@bounces.budapestpost.example",
        "b+daily.20261126.2077@bounces.budapestpost.example",
        "someone+newsletters@gmail.com",
    ],
    ids=["plain", "other-tag", "subaddress"],
)
def test_other_addresses_are_not_verp(address: str) -> None:
    assert find_verp_token(address) is None
