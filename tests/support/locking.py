"""What a reader meets during a send: a database with a sent edition, and SQLite's write lock
held by another connection, as a sender holds it while it commits a group of outcomes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy.engine import make_url

from digest.config import Settings
from digest.mail.transport import free_port
from digest.operations.publisher import Publisher
from tests.conftest import NOW, RecordingHandler, SeededTemplates, settings_for

# Far below the 15 s busy timeout a read that waited for the lock would spend, far above
# what any of these reads costs (well under a second here).
PROMPT = 8.0  # a loaded 2-core machine runs three test processes at once


def sent_install(
    folder: Path, templates: SeededTemplates, *, database_url: str | None = None
) -> Settings:
    """The seeded install in `folder` (on SQLite there unless `database_url` is given) after
    its daily edition went to a real SMTP server; every ledger row is `sent`."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
        where = {} if database_url is None else {"database_url": database_url}
        settings = settings_for(folder, port, **where)
        templates.copy_into(settings)
        publisher = Publisher(settings)
        result = publisher.send("daily", now=NOW)
        publisher.store.engine.dispose()
    finally:
        controller.stop()
    assert result.created and handler.messages
    return settings


def database_of(settings: Settings) -> Path:
    """The SQLite file of the settings' database."""
    return Path(str(make_url(settings.database_url).database))


@contextmanager
def write_lock_held(database: Path) -> Iterator[None]:
    """Hold the write lock from a connection of its own, with every ledger row changed to
    `sending` and not committed; checks on leaving that nobody took the lock meanwhile."""
    holder = sqlite3.connect(database, isolation_level=None, timeout=0)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE deliveries SET state = 'sending'")
        assert is_locked(database)
        yield
        assert is_locked(database), "the write lock was let go during the test"
        holder.execute("ROLLBACK")
    finally:
        holder.close()


def is_locked(database: Path) -> bool:
    """Whether another connection holds the write lock now (a writer would have to wait)."""
    probe = sqlite3.connect(database, isolation_level=None, timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc), exc
        return True
    finally:
        probe.close()
