"""The database schema and engine: tables and connection pragmas (`digest init`'s upgrades are
in `digest.store.upgrades`, the Alembic migrations in `digest/store/migrations/`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

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
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from digest.errors import ConfigError, StoreError
from digest.store.sqlite import begin_immediate, sqlite_pragmas

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

# One row each time a subscription became unsubscribed: how (a UnsubscribeChannel), and the
# edition it is credited to, the newest of the list the reader had been sent by then (None:
# they had been sent none). The unsubscribe link names the reader and the list, not the
# edition, so that is the closest a link tells.
unsubscribes = Table(
    "unsubscribes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber_id", ForeignKey("subscribers.id"), nullable=False),
    Column("list_id", ForeignKey("lists.id"), nullable=False),
    Column("edition_id", ForeignKey("editions.id")),
    Column("channel", String(16), nullable=False),
    Column("unsubscribed_at", UTCDateTime, nullable=False),
    Index("ix_unsubscribes_edition", "edition_id"),
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

# An editor's shape of a list's edition (lead, exclusions, section order, subject), set while
# it is a draft; keyed like the note, and for the same reason.
edition_shapes = Table(
    "edition_shapes",
    metadata,
    Column("list_id", ForeignKey("lists.id"), primary_key=True),
    Column("edition_date", Date, primary_key=True),
    Column("lead_article_id", String(255)),
    Column("excluded_ids", JSON, nullable=False),
    Column("section_order", JSON, nullable=False),
    Column("subject", Text),
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
        event.listen(engine, "connect", sqlite_pragmas)
        event.listen(engine, "begin", begin_immediate)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"cannot use database_url {url.render_as_string()}: {exc}") from exc


def has_schema(engine: Engine) -> bool:
    """Whether `digest init` ever ran on this database (it makes `lists` first); True when
    that cannot be told, so the caller reports the error it already has."""
    try:
        # Read-only: asked after an error, which may be a write lock held elsewhere; waiting
        # for that lock again would double the wait before the error is reported.
        with engine.connect().execution_options(digest_read_only=True) as connection:
            return inspect(connection).has_table(lists.name)
    except SQLAlchemyError:
        return True


# Kept importable from here, where callers have always found them.
from digest.store.upgrades import alembic_config, upgrade  # noqa: E402

__all__ = ["alembic_config", "upgrade"]
