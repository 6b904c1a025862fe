"""Unsubscribe tokens: unforgeable, scoped to one list, rotatable."""

from __future__ import annotations

import base64
from datetime import date

import pytest

from digest.edition.tokens import (
    message_id,
    read_message_id,
    read_unsubscribe_token,
    unsubscribe_token,
)

KEY = b"k" * 32


def test_token_round_trips_and_is_short() -> None:
    token = unsubscribe_token(secret=KEY, key_id=1, subscriber_id=42, list_slug="daily")
    assert len(token) <= 40 and token.isascii()
    assert read_unsubscribe_token(token, list_slug="daily", secrets={1: KEY}) == 42


def test_flipped_bit_other_list_and_unknown_key_are_rejected() -> None:
    token = unsubscribe_token(secret=KEY, key_id=1, subscriber_id=42, list_slug="daily")
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-1] ^= 1
    flipped = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert read_unsubscribe_token(flipped, list_slug="daily", secrets={1: KEY}) is None
    assert read_unsubscribe_token(token, list_slug="weekly", secrets={1: KEY}) is None
    assert read_unsubscribe_token(token, list_slug="daily", secrets={2: KEY}) is None
    assert read_unsubscribe_token("not a token!", list_slug="daily", secrets={1: KEY}) is None


def test_rotation_keeps_old_links_working() -> None:
    old = unsubscribe_token(secret=b"old", key_id=1, subscriber_id=7, list_slug="daily")
    new = unsubscribe_token(secret=b"new", key_id=2, subscriber_id=7, list_slug="daily")
    secrets = {1: b"old", 2: b"new"}
    assert read_unsubscribe_token(old, list_slug="daily", secrets=secrets) == 7
    assert read_unsubscribe_token(new, list_slug="daily", secrets=secrets) == 7


def _mid(secret: bytes, subscriber_id: int, day: date = date(2026, 11, 26)) -> str:
    return message_id(
        secret=secret,
        domain="budapestpost.example",
        list_slug="daily",
        edition_date=day,
        subscriber_id=subscriber_id,
    )


@pytest.mark.parametrize("subscriber_id", [1, 2, 1042, 987654321, 2**63 - 1])
def test_a_message_id_reads_back_as_what_it_was_made_from(subscriber_id: int) -> None:
    made = _mid(b"k", subscriber_id)
    assert made.endswith("@budapestpost.example>")
    assert read_message_id(made, secrets=[b"k"]) == ("daily", date(2026, 11, 26), subscriber_id)


def test_a_message_id_shows_no_subscriber_number_and_differs_across_installs() -> None:
    ids = [_mid(b"install-a", n) for n in range(1, 201)]
    assert len(set(ids)) == 200
    sealed = [int.from_bytes(base64.b32decode(m.split(".")[2].upper() + "==="), "big") for m in ids]
    assert all(value != n for n, value in enumerate(sealed, start=1))
    assert sorted(sealed) != sealed  # spread over 64 bits, in no order
    # Sorted IDs do not follow the subscriber order: nothing counts up.
    assert sorted(ids) != ids
    assert {_mid(b"install-b", n) for n in range(1, 201)}.isdisjoint(ids)
    assert _mid(b"install-a", 7) == _mid(b"install-a", 7)  # stable across retries


def test_a_retired_secret_still_reads_its_message_ids() -> None:
    old = _mid(b"old", 42)
    assert read_message_id(old, secrets=[b"new", b"old"]) == ("daily", date(2026, 11, 26), 42)
    assert read_message_id(old, secrets=[b"new"]) is None


@pytest.mark.parametrize(
    "value",
    [
        "<daily.20261399.aaaaaaaaaaaca.aaaaaaaaaa@budapestpost.example>",
        "<daily.20261126.1042.3f9a1c2b7d4e@budapestpost.example>",
        "<20261126060014.4Xk2Lm0FzYz9sPq@mail.budapestpost.example>",
        None,
    ],
    ids=["impossible-date", "old-shape", "someone-elses", "none"],
)
def test_what_is_not_ours_reads_as_nothing(value: str | None) -> None:
    assert read_message_id(value, secrets=[b"k"]) is None


def test_a_forged_tag_reads_as_nothing() -> None:
    made = _mid(b"k", 42)
    forged = made[: made.index("@") - 10] + "aaaaaaaaaa" + made[made.index("@") :]
    assert read_message_id(forged, secrets=[b"k"]) is None
