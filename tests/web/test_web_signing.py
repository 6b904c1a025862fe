"""Signed links of the web pages: bound to their purpose, tamper-evident, rotatable."""

from __future__ import annotations

import string

from digest.edition.signing import (
    Confirmation,
    confirmation_token,
    preferences_token,
    read_confirmation,
    read_preferences_token,
    sign,
    unsign,
)

KEY = b"k" * 32
ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def test_confirmation_round_trips_with_lists_and_name() -> None:
    made = Confirmation(
        subscriber_id=42, issued_at=1_772_431_200, list_slugs=("daily", "weekly"), name="Győri Ödön"
    )
    token = confirmation_token(made, secret=KEY, key_id=3)
    assert token.isascii() and "." not in token
    assert read_confirmation(token, secrets={3: KEY}) == made
    assert read_confirmation(token, secrets={3: b"other"}) is None
    assert read_confirmation(token, secrets={4: KEY}) is None


def test_a_token_made_for_one_purpose_passes_for_no_other() -> None:
    prefs = preferences_token(7, secret=KEY, key_id=1)
    assert read_preferences_token(prefs, secrets={1: KEY}) == 7
    assert read_confirmation(prefs, secrets={1: KEY}) is None
    assert unsign(prefs, purpose="csrf", secrets={1: KEY}) is None
    csrf = sign(b"cookie-value", purpose="csrf", secret=KEY, key_id=1)
    assert read_preferences_token(csrf, secrets={1: KEY}) is None


def test_every_altered_character_is_rejected() -> None:
    token = preferences_token(7, secret=KEY, key_id=1)
    for index in range(len(token)):
        # Flip the top bit of the character's 6: the low bits of the last one are padding.
        flipped = ALPHABET[ALPHABET.index(token[index]) ^ 32]
        changed = token[:index] + flipped + token[index + 1 :]
        assert read_preferences_token(changed, secrets={1: KEY}) is None, index
    for junk in ("", "!!!", "é" * 10, "A" * 5):
        assert read_preferences_token(junk, secrets={1: KEY}) is None
