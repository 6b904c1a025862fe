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


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<daily.20261126.1042.3f9a1c2b7d4e@budapestpost.example>",
         ("daily", date(2026, 11, 26), 1042)),
        ("<daily.20261399.1042.3f9a1c2b7d4e@budapestpost.example>", None),
        ("<20261126060014.4Xk2Lm0FzYz9sPq@mail.budapestpost.example>", None),
        (None, None),
    ],
    ids=["ours", "impossible-date", "someone-elses", "none"],
)  # fmt: skip
def test_read_message_id(value: str | None, expected: tuple[str, date, int] | None) -> None:
    assert read_message_id(value) == expected


def test_a_message_id_reads_back_as_what_it_was_made_from() -> None:
    made = message_id(
        secret=b"k",
        domain="budapestpost.example",
        list_slug="weekly-culture",
        edition_date=date(2026, 12, 3),
        subscriber_id=987654321,
    )
    assert made.endswith("@budapestpost.example>")
    assert read_message_id(made) == ("weekly-culture", date(2026, 12, 3), 987654321)
