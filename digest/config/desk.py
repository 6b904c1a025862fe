"""`[desk]`: how editors sign in to the desk of `digest web`."""

from __future__ import annotations

from pydantic import Field

from digest.config.checks import Section


class DeskSettings(Section):
    """Sessions and lock-out for the editors' desk at /desk."""

    # A signed-in editor stays signed in this long, then signs in again.
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # This many wrong passwords in a row lock the account for `lock_minutes`.
    lock_after: int = Field(default=5, ge=1, le=100)
    lock_minutes: float = Field(default=15.0, gt=0)
    min_password_length: int = Field(default=12, ge=8, le=128)
    # argon2id's cost (RFC 9106): memory in KiB and passes. The defaults take a few hundred
    # ms here, which a sign-in can afford and a guesser with a stolen hash cannot.
    hash_memory_kib: int = Field(default=65536, ge=1024)
    hash_passes: int = Field(default=3, ge=1)
    # Largest CSV upload to /desk/subscribers/import, in bytes (else 413 before reading).
    upload_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
