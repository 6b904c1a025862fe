"""Alembic's entry point: runs the revisions in `versions/` against `digest.store.schema.metadata`.

`digest.store.schema.upgrade` hands over its own connection, already in a transaction, in
`config.attributes["connection"]`; the migrations run in that transaction. Run by the `alembic`
command instead (writing a revision: see `digest/store/migrations/__init__.py`), it connects to the
database of `-x url=...`, else of $DIGEST_DATABASE_URL; `--sql` prints the SQL instead.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection, make_url

from digest.store.schema import make_engine, metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_server_default=True,
        # SQLite alters a table by copying it, so autogenerate writes batch operations for it.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "DIGEST_DATABASE_URL"
    )
    if not url:
        raise SystemExit("say which database: `alembic -x url=...` or DIGEST_DATABASE_URL")
    return url


def main() -> None:
    """Run the migrations on the connection given, or on one of our own."""
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
    elif context.is_offline_mode():
        url = make_url(_url())
        context.configure(
            url=url,
            target_metadata=metadata,
            literal_binds=True,
            render_as_batch=url.get_backend_name() == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    else:
        engine = make_engine(_url())
        try:
            with engine.begin() as connection:
                _run(connection)
        finally:
            engine.dispose()


main()
