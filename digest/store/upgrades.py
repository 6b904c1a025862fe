"""`digest init`'s upgrades: the Alembic migrations in `digest/store/migrations/`, run in one
transaction, and the take-over of databases made by the hand-made upgrades before them."""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from digest.errors import StoreError
from digest.store.schema import MIGRATIONS
from digest.store.sqlite import sqlite_file

if TYPE_CHECKING:
    from alembic.config import Config

# The hand-made upgrades that came before Alembic recorded their steps in `schema_version`;
# a database at their last step holds exactly revision 0001 (see migrations/versions/).
_LEGACY_LAST = 5
_LEGACY_REVISION = "0001"
# The transaction-scoped advisory lock that makes concurrent `digest init`s on one
# PostgreSQL database wait for each other (SQLite's BEGIN IMMEDIATE already does).
_UPGRADE_LOCK = 0x6469676573740002


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the migrations shipped in `digest/store/migrations/`, built in
    code (no alembic.ini); with a connection, the migrations run on it, in its transaction."""
    from alembic.config import Config  # Alembic is a big import: only `digest init` needs it

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _legacy_version(connection: Connection) -> int | None:
    """The hand-made upgrades' version of a database they made, else None."""
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" in tables or "schema_version" not in tables:
        return None
    found = connection.execute(text("SELECT MAX(version) FROM schema_version")).scalar()
    return int(found or 0)


def upgrade(engine: Engine, *, now: datetime) -> str:
    """Create or upgrade the schema to the newest migration; returns its revision id.

    A database made by the hand-made upgrades that came before Alembic is taken over at
    revision 0001. All in one transaction. (`now` is unused: Alembic records no time.)
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    path = sqlite_file(engine.url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Made here, mode 0600, before SQLite opens it: SQLite gives the -wal and -shm
            # files the database's own mode, so the subscribers stay the owner's alone.
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise StoreError(f"cannot create the database at {path}: {exc.strerror}") from exc
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(select(func.pg_advisory_xact_lock(_UPGRADE_LOCK)))
            config = alembic_config(connection)
            legacy = _legacy_version(connection)
            if legacy is not None:
                if legacy != _LEGACY_LAST:
                    raise StoreError(
                        f"the database is at version {legacy} of the upgrades that came "
                        f"before Alembic; only their last, {_LEGACY_LAST}, can be taken over: "
                        "upgrade it with the digest that made it first"
                    )
                command.stamp(config, _LEGACY_REVISION)
            command.upgrade(config, "head")
            current = MigrationContext.configure(connection).get_current_revision()
            assert current is not None
            return current
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot create or upgrade the schema: {exc.__class__.__name__}: {exc}"
        ) from exc
    except (CommandError, RevisionError) as exc:
        # Typically a database migrated by a newer digest than this one.
        raise StoreError(f"cannot upgrade the schema: {exc}") from exc
