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


class DigestError(Exception):
    """Base of every error that `digest` raises on purpose."""

    exit_code = 1


class ConfigError(DigestError):
    """A setting is missing, malformed or inconsistent."""

    exit_code = 2


class NotFoundError(DigestError):
    """An unknown list, edition or subscriber was named."""

    exit_code = 3


class StoreError(DigestError):
    """The database refused an operation or cannot be reached."""

    exit_code = 4


class InvalidInputError(DigestError):
    """A row of input cannot be used; the message says which row and why."""

    exit_code = 5


class HeaderInjectionError(InvalidInputError):
    """A value bound for a mail header contains CR, LF or NUL."""


class FeedError(InvalidInputError):
    """A feed cannot be fetched or read as RSS, Atom or JSON Feed; the message names the feed."""


class PausedError(DigestError):
    """An edition paused itself after many permanent failures; `digest resume` restarts it."""

    exit_code = 8


class RenderError(DigestError):
    """A template is missing or failed to render."""

    exit_code = 6


class TransportError(DigestError):
    """The SMTP server cannot be reached, or refused the session as a whole."""

    exit_code = 7
