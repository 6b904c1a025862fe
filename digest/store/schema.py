"""The database schema and engine: tables, connection pragmas, and `digest init`'s upgrades
(the Alembic migrations in `digest/store/migrations/`)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

if TYPE_CHECKING:
    from alembic.config import Config

from digest.errors import ConfigError, StoreError

MIGRATIONS = Path(__file__).with_name("migrations")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise StoreError("naive datetime given to the store; pass an aware one")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

articles = Table(
    "articles",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("section", String(100), nullable=False),
    Column("url", Text, nullable=False),
    # The URL without tracking parameters and case noise (digest.store.urls): one page, one row.
    Column("canonical_url", Text),
    Column("image_url", Text),
    Column("image_alt", Text, nullable=False, default=""),
    Column("author", Text),
    Column("lead", Boolean, nullable=False, default=False),
    Column("body", JSON, nullable=False, default=list),
    Column("published_at", UTCDateTime, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_articles_published_at", "published_at"),
    Index("ix_articles_canonical_url", "canonical_url"),
    Index("ix_articles_first_seen_at", "first_seen_at"),
)

lists = Table(
    "lists",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slug", String(63), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False),
    # Lower-cased address: one person per mailbox however its case was typed.
    Column("email_key", String(320), nullable=False, unique=True),
    Column("name", Text, nullable=False, default=""),
    Column("locale", String(35), nullable=False, default=""),
    Column("timezone", String(64), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    # Soft bounces in a row (`digest bounces`), and when the last counted one was sent.
    Column("soft_bounces", Integer, nullable=False, default=0, server_default=text("0")),
    Column("soft_bounced_at", UTCDateTime),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscriber_id", ForeignKey("subscribers.id"), primary_key=True),
    Column("list_id", ForeignKey("lists.id"), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("sections", JSON),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_subscriptions_list_status", "list_id", "status"),
)

editions = Table(
    "editions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("list_id", ForeignKey("lists.id"), nullable=False),
    Column("edition_date", Date, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("cutoff", UTCDateTime, nullable=False),
    Column("subject", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("article_ids", JSON, nullable=False),
    # The article ids of each story in reading order (representative first); NULL before 0004.
    Column("stories", JSON),
    Column("slot_nonce", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    UniqueConstraint("list_id", "edition_date", name="uq_editions_list_date"),
)

# The editor's note of a list's edition, set before the edition is made (hence its own table,
# keyed like an edition, not a column of one).
edition_notes = Table(
    "edition_notes",
    metadata,
    Column("list_id", ForeignKey("lists.id"), primary_key=True),
    Column("edition_date", Date, primary_key=True),
    Column("markdown", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("edition_id", ForeignKey("editions.id"), primary_key=True),
    Column("subscriber_id", ForeignKey("subscribers.id"), primary_key=True),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_reply", Text),
    Column("message_id", String(255), nullable=False),
    Column("owner", String(100)),
    Column("lease_expires_at", UTCDateTime),
    Column("next_attempt_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    # Claims read each state's due rows in subscriber order straight from this index.
    Index("ix_deliveries_due", "edition_id", "state", "subscriber_id"),
)

# One row per polled feed URL: the validators for the next conditional GET and the last outcome.
feed_state = Table(
    "feed_state",
    metadata,
    Column("url", String(2048), primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_polled", UTCDateTime),
    Column("last_error", Text),
)

# One row per bounce event `digest bounces` applied, so reading a mailbox again counts nothing
# twice; also the record of which subscriber, edition and kind each one was.
bounce_events = Table(
    "bounce_events",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("source", Text, nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("status", String(16), nullable=False),
    Column("subscriber_id", ForeignKey("subscribers.id")),
    Column("edition_id", ForeignKey("editions.id")),
    Column("effect", String(20), nullable=False),
    Column("processed_at", UTCDateTime, nullable=False),
    Index("ix_bounce_events_subscriber_edition", "subscriber_id", "edition_id"),
)

# One row per ARF complaint `digest bounces` read (once-only, like bounce_events): its type and
# date as the report gives them, whom it named and how (verp, message-id, unsubscribe-token, or
# "" when nothing we signed named anyone), and what it did.
complaints = Table(
    "complaints",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("source", Text, nullable=False),
    Column("feedback_type", String(32), nullable=False),
    Column("user_agent", Text, nullable=False),
    Column("reported_domain", String(255), nullable=False),
    Column("arrived_at", UTCDateTime),
    Column("subscriber_id", ForeignKey("subscribers.id")),
    Column("edition_id", ForeignKey("editions.id")),
    Column("named_by", String(20), nullable=False),
    Column("effect", String(20), nullable=False),
    Column("processed_at", UTCDateTime, nullable=False),
    Index("ix_complaints_subscriber", "subscriber_id"),
)


# One row per slot of a list's schedule that `digest run` handled (ran, nothing new, missed,
# failed): the newest tells a restarted scheduler what is still due. The key makes two
# schedulers that handle the same slot leave one record.
schedule_runs = Table(
    "schedule_runs",
    metadata,
    Column("list_id", ForeignKey("lists.id"), primary_key=True),
    Column("slot", UTCDateTime, primary_key=True),
    Column("outcome", String(20), nullable=False),
    Column("edition_id", ForeignKey("editions.id")),
    Column("detail", Text, nullable=False, default=""),
    Column("owner", String(100)),
    Column("recorded_at", UTCDateTime, nullable=False),
)

# One row per edition of a list with approval = "required" once it is decided: approved by an
# editor, sent at the deadline, or skipped (a missed edition). The key makes the first stand.
edition_verdicts = Table(
    "edition_verdicts",
    metadata,
    Column("edition_id", ForeignKey("editions.id"), primary_key=True),
    Column("verdict", String(20), nullable=False),
    Column("decided_by", String(320), nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
)

# The people who may sign in to the desk (`digest editors add`); readers never are here.
editors = Table(
    "editors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Failed sign-ins in a row, and until when the account is locked after too many.
    Column("failed_sign_ins", Integer, nullable=False, default=0, server_default=text("0")),
    Column("locked_until", UTCDateTime),
    # Raised by sign-out: every session cookie issued before it stops working.
    Column("session_epoch", Integer, nullable=False, default=0, server_default=text("0")),
    Column("last_sign_in_at", UTCDateTime),
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers work during a send; FULL makes each committed ledger row survive power loss.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # Let SQLAlchemy's "begin" event issue BEGIN itself (see _begin_immediate).
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Connection) -> None:
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


def make_engine(database_url: str) -> Engine:
    """An engine for `database_url`, with the pragmas set for SQLite.

    Making the engine touches nothing: a SQLite file (and its folder) is created only by
    `upgrade`, so a read-only command on a fresh checkout leaves no empty database behind.
    """
    try:
        url = make_url(database_url)
    except ArgumentError as exc:
        raise ConfigError(f"database_url {database_url!r} is not a database URL") from exc
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 15})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"cannot use database_url {url.render_as_string()}: {exc}") from exc


def has_schema(engine: Engine) -> bool:
    """Whether `digest init` ever ran on this database (it makes `lists` first); True when
    that cannot be told, so the caller reports the error it already has."""
    try:
        with engine.connect() as connection:
            return inspect(connection).has_table(lists.name)
    except SQLAlchemyError:
        return True


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
