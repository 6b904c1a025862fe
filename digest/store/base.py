"""The engine, its transactions, and the lists every other table points at."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from digest.errors import NotFoundError, StoreError
from digest.models import (
    EditionStatus,
)
from digest.store.schema import has_schema, lists
from digest.store.sqlite import sqlite_file

log = logging.getLogger(__name__)

_QUEUE_PAGE = 2000
_RECENT_ERRORS = 3
# Editions whose delivery began: the archive shows these.
_STARTED = (EditionStatus.SENDING, EditionStatus.DONE, EditionStatus.PAUSED)


class StoreBase:
    """The engine, its transactions, and the lists every other table points at."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._file = sqlite_file(engine.url)

    @contextmanager
    def _tx(self, *, read_only: bool = False) -> Iterator[Connection]:
        # Connecting would create an empty SQLite file: only `digest init` may do that.
        if self._file is not None and not self._file.exists():
            raise StoreError(f"no database at {self._file}: run `digest init`")
        try:
            # A read-only transaction on SQLite does not take the write lock (see
            # _begin_immediate): it reads its snapshot while a long send writes.
            with (
                self.engine.connect().execution_options(digest_read_only=read_only) as connection,
                connection.begin(),
            ):
                yield connection
        except SQLAlchemyError as exc:
            if not has_schema(self.engine):
                raise StoreError("the database has no schema: run `digest init`") from exc
            raise StoreError(f"database error: {exc.__class__.__name__}: {exc.args[0]}") from exc

    def _insert_ignore(self, table: Any) -> Any:
        # Both dialects spell "skip rows that already exist" differently. Callers read the
        # rowcount (1 inserted, 0 skipped): SQLAlchemy keeps it for an INSERT only when asked
        # (on PostgreSQL it is -1 otherwise).
        # The engine's own dialect module (loaded with it): the other one is never imported.
        dialect = importlib.import_module(f"sqlalchemy.dialects.{self.engine.dialect.name}")
        return (
            dialect.insert(table).on_conflict_do_nothing().execution_options(preserve_rowcount=True)
        )

    def _list_id(self, tx: Connection, slug: str) -> int:
        found = tx.execute(select(lists.c.id).where(lists.c.slug == slug)).scalar()
        if found is None:
            raise NotFoundError(f"list {slug!r} is not in the database; run `digest init`")
        return int(found)

    def sync_lists(self, configured: Iterable[tuple[str, str]], *, now: datetime) -> None:
        """Make sure every configured (slug, name) has a row; names follow the config."""
        with self._tx() as tx:
            for slug, name in configured:
                tx.execute(self._insert_ignore(lists).values(slug=slug, name=name, created_at=now))
                tx.execute(update(lists).where(lists.c.slug == slug).values(name=name))
