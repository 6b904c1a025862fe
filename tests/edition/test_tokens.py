"""Unsubscribe tokens: unforgeable, scoped to one list, rotatable."""

from __future__ import annotations

import base64

from digest.edition.tokens import read_unsubscribe_token, unsubscribe_token

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
