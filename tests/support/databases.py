"""Throwaway databases for tests: a SQLite file in the test's folder, or a PostgreSQL database
made on the test server and dropped afterwards.

The server is the one `scripts/test-postgres.sh` starts (what `make test` and CI run): its URL
comes from $DIGEST_TEST_POSTGRES_URL, else from the file the script writes. Without one, the
PostgreSQL tests are skipped on a developer's machine, and fail when CI=true.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

BACKENDS = ["sqlite", "postgresql"]
START = "run `make services` (scripts/test-postgres.sh) or set DIGEST_TEST_POSTGRES_URL"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def server_url() -> tuple[str | None, bool]:
    """The test server's URL, and whether it was given explicitly (the environment)."""
    given = os.environ.get("DIGEST_TEST_POSTGRES_URL")
    if given:
        return given, True
    folder = os.environ.get("DIGEST_TEST_PG_DIR") or str(
        Path(tempfile.gettempdir()) / "digest-test-postgres"
    )
    written = Path(folder) / "url"
    if not written.is_file():
        return None, False
    return written.read_text(encoding="utf-8").strip() or None, False


def sqlite_url(folder: Path) -> str:
    """The SQLite database `tests.conftest.settings_for` uses by default."""
    return f"sqlite:///{folder / 'digest.sqlite3'}"


class PostgresServer:
    """The test server: makes databases with unique names and drops them again."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        # AUTOCOMMIT: CREATE and DROP DATABASE cannot run in a transaction.
        self.engine: Engine = create_engine(
            self.url, isolation_level="AUTOCOMMIT", poolclass=NullPool
        )

    def check(self) -> None:
        """Raise SQLAlchemyError unless the server answers and lets us create databases."""
        with self.engine.connect() as connection:
            allowed = connection.execute(
                text("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
            ).scalar()
        if not allowed:
            raise PermissionError(f"{self.url.username} may not create databases")

    def create(self, *, template: str | None = None) -> str:
        """A new, empty database (or a copy of `template`, a URL from here); returns its URL."""
        name = f"digest_test_{uuid.uuid4().hex[:16]}"
        self._execute(f'CREATE DATABASE "{name}"' + self._template(template))
        return self._url(name)

    def recreate(self, url: str, *, template: str) -> None:
        """Replace the database at `url` (from here) with a copy of `template`."""
        self.drop(url)
        self._execute(f'CREATE DATABASE "{make_url(url).database}"' + self._template(template))

    def drop(self, url: str) -> None:
        """Drop the database at `url` (from here), closing whatever is still connected to it."""
        name = make_url(url).database
        # Not DROP ... WITH (FORCE): run by a role that is no superuser, it fails when an
        # autovacuum worker is in the database. A plain DROP stops autovacuum itself, and waits
        # (up to 5 s) for the sessions ended here, ours, left connected by engines not disposed.
        with self.engine.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :name AND usename = current_user"
                    " AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))

    def _template(self, template: str | None) -> str:
        # template0 by default: nobody can connect to it, so CREATE DATABASE never finds it
        # "being accessed by other users" (template1 can be, by anyone's psql).
        name = make_url(template).database if template else "template0"
        return f" TEMPLATE \"{name}\" ENCODING 'UTF8'"

    def _url(self, database: str) -> str:
        url: URL = self.url.set(database=database)
        return url.render_as_string(hide_password=False)

    def _execute(self, statement: str) -> None:
        with self.engine.connect() as connection:
            connection.execute(text(statement))


def connect(url: str) -> PostgresServer:
    """The server at `url`, checked; raises SQLAlchemyError or PermissionError if unusable."""
    server = PostgresServer(url)
    try:
        server.check()
    except (SQLAlchemyError, PermissionError):
        server.engine.dispose()
        raise
    return server


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (WAL included), for tests that start from the
    same prepared data without preparing it again."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
