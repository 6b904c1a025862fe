"""What SQLite needs to serve several processes at once: WAL, durable commits, a busy
timeout, and transactions that take the write lock when they begin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, Connection


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Set on every new SQLite connection."""
    # WAL lets readers work during a send; FULL makes each committed ledger row survive power loss.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # Let SQLAlchemy's "begin" event issue BEGIN itself (see begin_immediate).
    dbapi_connection.isolation_level = None


def begin_immediate(connection: Connection) -> None:
    """Begin every SQLite transaction holding the write lock."""
    # Take the write lock when the transaction starts: a transaction that read first and then
    # wrote would fail at once (SQLITE_BUSY) when another process wrote in between, instead of
    # waiting its turn under the busy timeout. Several senders on one file need this.
    read_only = connection.get_execution_options().get("digest_read_only")  # WAL: a snapshot
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL names; None for other backends, memory and URI-style names."""
    if url.get_backend_name() != "sqlite" or url.query.get("uri"):
        return None
    if not url.database or url.database == ":memory:":
        return None
    return Path(url.database)
