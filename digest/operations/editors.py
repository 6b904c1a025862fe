"""The desk's accounts: adding editors, signing in with lock-out, and session cookies.

Passwords are kept as argon2id hashes (argon2-cffi's defaults, RFC 9106's second choice).
A sign-in with an unknown address costs the same hash check as a wrong password, so the
answer's timing does not tell which addresses are editors. After `lock_after` wrong
passwords in a row the account refuses every password, the right one too, for
`lock_minutes`: guessing costs hours, not seconds.

A session is a signed value (editor id, session epoch, issue time) in an HttpOnly cookie;
signing out raises the editor's epoch, which ends every session issued before.
"""

from __future__ import annotations

import contextlib
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from digest.config import DeskSettings
from digest.edition.signing import sign, unsign
from digest.errors import InvalidInputError
from digest.intake.people import normalise_address
from digest.store import Editor, Store

if TYPE_CHECKING:
    from argon2 import PasswordHasher

_SESSION = struct.Struct(">QQQ")  # editor id, session epoch, issued at (epoch seconds)
_PURPOSE = "desk-session"


def _hasher(settings: DeskSettings) -> PasswordHasher:
    from argon2 import PasswordHasher  # only the desk and `digest editors` pay for it

    return PasswordHasher(memory_cost=settings.hash_memory_kib, time_cost=settings.hash_passes)


def add_editor(
    store: Store, email: str, password: str, *, settings: DeskSettings, now: datetime
) -> str:
    """A new desk account; returns the address as stored. Raises InvalidInputError for a bad
    address, a short password or an address that is already an editor."""
    address = normalise_address(email)
    check_password(password, settings)
    store.add_editor(address, _hasher(settings).hash(password), now=now)
    return address


def check_password(password: str, settings: DeskSettings) -> None:
    """Refuse a password too short to resist guessing offline if the hashes ever leak."""
    if len(password) < settings.min_password_length:
        raise InvalidInputError(
            f"the password needs at least {settings.min_password_length} characters"
        )


def set_password(store: Store, email: str, password: str, *, settings: DeskSettings) -> None:
    """A new password for an editor; their sessions end and a lock is lifted."""
    check_password(password, settings)
    editor = store.editor_by_email(email)
    if editor is None:
        raise InvalidInputError(f"{email} is not an editor")
    store.set_password_hash(editor.id, _hasher(settings).hash(password))


class SignIn(StrEnum):
    """How a sign-in attempt ended."""

    OK = "ok"
    WRONG = "wrong"  # unknown address or wrong password: the page says the same for both
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class SignInResult:
    """A sign-in's outcome; `editor` only when OK, `locked_until` only when LOCKED."""

    outcome: SignIn
    editor: Editor | None = None
    locked_until: datetime | None = None


# Checked against when the address is unknown, so both cases cost one argon2 verification.
_DUMMY_HASHES: dict[tuple[int, int], str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    key = (hasher.memory_cost, hasher.time_cost)
    if key not in _DUMMY_HASHES:
        _DUMMY_HASHES[key] = hasher.hash("not an editor's password")
    return _DUMMY_HASHES[key]


def sign_in(
    store: Store, email: str, password: str, *, settings: DeskSettings, now: datetime
) -> SignInResult:
    """Check an address and password, counting failures and locking after too many."""
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher(settings)
    editor = store.editor_by_email(email.strip())
    if editor is None:
        with contextlib.suppress(VerificationError):
            hasher.verify(_dummy_hash(hasher), password)
        return SignInResult(SignIn.WRONG)
    if editor.locked_until is not None and editor.locked_until > now:
        return SignInResult(SignIn.LOCKED, locked_until=editor.locked_until)
    try:
        hasher.verify(editor.password_hash, password)
    except (VerificationError, InvalidHashError):
        failures = editor.failed_sign_ins + 1
        if editor.locked_until is not None:
            failures = 1  # the lock ran out: a new count
        lock = now + timedelta(minutes=settings.lock_minutes)
        locks = failures >= settings.lock_after
        store.record_failed_sign_in(
            editor.id, failures=failures, lock_until=lock if locks else None
        )
        if locks:
            return SignInResult(SignIn.LOCKED, locked_until=lock)
        return SignInResult(SignIn.WRONG)
    rehash = hasher.hash(password) if hasher.check_needs_rehash(editor.password_hash) else None
    store.record_sign_in(editor.id, now=now, password_hash=rehash)
    return SignInResult(SignIn.OK, editor=store.editor_by_id(editor.id))


def session_cookie(editor: Editor, *, secret: bytes, key_id: int, now: datetime) -> str:
    """The signed session value for a signed-in editor."""
    body = _SESSION.pack(editor.id, editor.session_epoch, int(now.timestamp()))
    return sign(body, purpose=_PURPOSE, secret=secret, key_id=key_id)


def session_editor(
    store: Store,
    value: str,
    *,
    secrets: dict[int, bytes],
    settings: DeskSettings,
    now: datetime,
) -> Editor | None:
    """The editor a genuine, current session cookie names; None for anything else (forged,
    expired, signed out, or an account that is gone or locked)."""
    if not value or len(value) > 256:
        return None
    body = unsign(value, purpose=_PURPOSE, secrets=secrets)
    if body is None or len(body) != _SESSION.size:
        return None
    editor_id, epoch, issued = _SESSION.unpack(body)
    issued_at = datetime.fromtimestamp(issued, UTC)
    if not issued_at <= now < issued_at + timedelta(hours=settings.session_hours):
        return None
    editor = store.editor_by_id(editor_id)
    if editor is None or editor.session_epoch != epoch:
        return None
    if editor.locked_until is not None and editor.locked_until > now:
        return None
    return editor


def sign_out(store: Store, editor: Editor) -> None:
    """End every session of the editor."""
    store.end_sessions(editor.id)
