"""The project's one exception tree.

    DigestError                   base: the CLI prints its message on one line and exits non-zero
    ├── ConfigError               a setting is missing, malformed or inconsistent
    ├── NotFoundError             an unknown list, edition or subscriber
    ├── StoreError                the database refused or is unreachable
    ├── InvalidInputError         a row of input (seed, import, article) that cannot be used
    │   ├── HeaderInjectionError  a value bound for a mail header holds CR, LF or NUL
    │   └── FeedError             a feed that cannot be fetched or read; the message names it
    ├── PausedError               an edition paused itself after many permanent failures
    ├── RenderError               a template is missing or failed to render
    └── TransportError            the SMTP server cannot be reached or refuses the session

Library errors (SQLAlchemy, smtplib, Jinja2) are translated into these at the one module that
talks to that library, always with ``raise ... from exc`` so the cause stays in the traceback.
Per-recipient SMTP refusals are not exceptions: the delivery loop records them and goes on.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What `digest` exits with, so a cron job or a service manager can tell outcomes apart.

    Typer's own usage errors (an unknown option, a missing argument) also exit 2.
    """

    OK = 0
    ERROR = 1
    CONFIG = 2
    NOT_FOUND = 3
    STORE = 4
    INVALID_INPUT = 5
    RENDER = 6
    TRANSPORT = 7
    PAUSED = 8
    ROWS_REJECTED = 9
    DELIVERIES_FAILED = 10


class DigestError(Exception):
    """Base of every error that `digest` raises on purpose."""

    exit_code: int = ExitCode.ERROR


class ConfigError(DigestError):
    """A setting is missing, malformed or inconsistent."""

    exit_code: int = ExitCode.CONFIG


class NotFoundError(DigestError):
    """An unknown list, edition or subscriber was named."""

    exit_code: int = ExitCode.NOT_FOUND


class StoreError(DigestError):
    """The database refused an operation or cannot be reached."""

    exit_code: int = ExitCode.STORE


class InvalidInputError(DigestError):
    """A row of input cannot be used; the message says which row and why."""

    exit_code: int = ExitCode.INVALID_INPUT


class HeaderInjectionError(InvalidInputError):
    """A value bound for a mail header contains CR, LF or NUL."""


class FeedError(InvalidInputError):
    """A feed cannot be fetched or read as RSS, Atom or JSON Feed; the message names the feed."""


class PausedError(DigestError):
    """An edition paused itself after many permanent failures; `digest resume` restarts it."""

    exit_code: int = ExitCode.PAUSED


class RenderError(DigestError):
    """A template is missing or failed to render."""

    exit_code: int = ExitCode.RENDER


class TransportError(DigestError):
    """The SMTP server cannot be reached, or refused the session as a whole."""

    exit_code: int = ExitCode.TRANSPORT
