"""All SQL lives here: articles, subscribers, editions and the delivery ledger."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, and_, bindparam, func, insert, null, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row, RowMapping
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from digest.errors import NotFoundError, StoreError
from digest.models import (
    Article,
    BodyBlock,
    DeliveryState,
    Edition,
    EditionStatus,
    ListRun,
    RunOutcome,
    Subscriber,
    SubscriptionStatus,
)
from digest.store.schema import (
    UTCDateTime,
    articles,
    bounce_events,
    deliveries,
    editions,
    feed_state,
    has_schema,
    lists,
    schedule_runs,
    sqlite_file,
    subscribers,
    subscriptions,
)

log = logging.getLogger(__name__)

_QUEUE_PAGE = 2000
_RECENT_ERRORS = 3
SUPPRESSED = (SubscriptionStatus.UNSUBSCRIBED, SubscriptionStatus.BOUNCED)
# Editions whose delivery began: the archive shows these.
_STARTED = (EditionStatus.SENDING, EditionStatus.DONE, EditionStatus.PAUSED)


@dataclass(frozen=True, slots=True)
class Claim:
    """One delivery handed to a sender: who, and under which Message-ID."""

    edition_id: int
    subscriber: Subscriber
    message_id: str
    attempts: int
    sections: tuple[str, ...] | None = None  # the subscriber's own choice, if any


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one claimed delivery, as the ledger will record it."""

    edition_id: int
    subscriber_id: int
    state: DeliveryState
    reply: str
    next_attempt_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EditionSummary:
    """An edition with its delivery counts per state, for `digest status`."""

    edition: Edition
    counts: dict[str, int]
    recent_errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Enrolment:
    """One person to put on one list, as an import row or `digest subscribers add` gives them.

    `email` is already validated; a blank name, locale or time zone leaves the stored one alone.
    """

    email: str
    name: str
    locale: str
    timezone: str
    status: SubscriptionStatus


class Enrolled(StrEnum):
    """What putting one person on a list changed."""

    ADDED = "added"  # a new subscription on the list (and a new subscriber, if need be)
    UPDATED = "updated"  # the status, name, locale or time zone changed
    UNCHANGED = "unchanged"
    KEPT = "suppressed kept"  # unsubscribed or bounced on the list: left exactly as it was


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    """One subscriber on one list, for `digest subscribers list` and `export`."""

    email: str
    name: str
    locale: str
    timezone: str
    list_slug: str
    status: SubscriptionStatus
    soft_bounces: int


class BounceAction(StrEnum):
    """What the caller of `Store.apply_bounce` wants done for a known subscriber."""

    SUPPRESS = "suppress"  # the mailbox is dead: bounced on every list
    COUNT = "count"  # a soft bounce: count it; the limit-th in a row suppresses
    NOTE = "note"  # only remember it (policy bounces are our problem, not the reader's)


class BounceEffect(StrEnum):
    """What `Store.apply_bounce` did."""

    SEEN = "already processed"
    UNKNOWN = "unknown recipient"
    SUPPRESSED = "suppressed"
    COUNTED = "counted"
    NOTED = "noted"


@dataclass(frozen=True, slots=True)
class BounceEvent:
    """One recipient's result in one bounce report, ready for `Store.apply_bounce`."""

    key: str  # the same event read twice has the same key
    source: str  # where it was read, for people
    recipient: str  # the address the report names; "" when it names none
    kind: str  # hard, soft or policy (`digest.intake.bounce_reports.BounceKind`)
    status: str  # the RFC 3463 code
    action: BounceAction
    # From the original's Message-ID when it has our shape; trusted only if the ledger holds
    # that exact Message-ID for that subscriber and edition.
    message_id: str | None = None
    list_slug: str | None = None
    edition_date: date | None = None
    subscriber_id: int | None = None


@dataclass(frozen=True, slots=True)
class AppliedBounce:
    """The result of `Store.apply_bounce`: whom it concerned and what changed."""

    effect: BounceEffect
    email: str | None = None  # the subscriber's stored address
    list_slug: str | None = None  # the list and edition of the bounced message, when known
    edition_date: date | None = None
    soft_bounces: int = 0  # the count in a row, after this one


def _article(row: RowMapping) -> Article:
    return Article(
        id=row["id"],
        title=row["title"],
        summary=row["summary"],
        section=row["section"],
        url=row["url"],
        published_at=row["published_at"],
        image_url=row["image_url"],
        image_alt=row["image_alt"],
        author=row["author"],
        lead=bool(row["lead"]),
        body=tuple(BodyBlock(kind=b["kind"], text=b["text"]) for b in row["body"] or ()),
    )


def _due_kinds(edition_id: int | ColumnElement[int], now: datetime) -> list[ColumnElement[bool]]:
    """The ways a delivery is due now, each on one state so the (edition, state, subscriber)
    index serves it in subscriber order: queued (and not held), deferred or unknown and due,
    or sending under a dead lease. A queued row with a `next_attempt_at` is held until then
    (a list's `deliver_at`)."""
    state, edition, at = deliveries.c.state, deliveries.c.edition_id, deliveries.c.next_attempt_at
    return [
        and_(edition == edition_id, state == DeliveryState.QUEUED, or_(at.is_(None), at <= now)),
        and_(edition == edition_id, state == DeliveryState.DEFERRED, at <= now),
        and_(edition == edition_id, state == DeliveryState.UNKNOWN, at <= now),
        and_(
            edition == edition_id,
            state == DeliveryState.SENDING,
            deliveries.c.lease_expires_at <= now,
        ),
    ]


def _due(edition_id: int | ColumnElement[int], now: datetime) -> ColumnElement[bool]:
    """Deliveries to hand out now (any of `_due_kinds`)."""
    return or_(*_due_kinds(edition_id, now))


def _content(item: Article) -> dict[str, Any]:
    """An article's stored fields other than its id and times."""
    return {
        "title": item.title,
        "summary": item.summary,
        "section": item.section,
        "url": item.url,
        "image_url": item.image_url,
        "image_alt": item.image_alt,
        "author": item.author,
        "lead": item.lead,
        "body": [{"kind": b.kind, "text": b.text} for b in item.body],
    }


def _edition(row: RowMapping, slug: str) -> Edition:
    return Edition(
        id=row["id"],
        list_slug=slug,
        edition_date=row["edition_date"],
        created_at=row["created_at"],
        cutoff=row["cutoff"],
        subject=row["subject"],
        html=row["html"],
        text=row["text"],
        article_ids=tuple(row["article_ids"]),
        slot_nonce=row["slot_nonce"],
        status=EditionStatus(row["status"]),
    )


class Store:
    """The project's only door to the database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._file = sqlite_file(engine.url)

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        # Connecting would create an empty SQLite file: only `digest init` may do that.
        if self._file is not None and not self._file.exists():
            raise StoreError(f"no database at {self._file}: run `digest init`")
        try:
            with self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            if not has_schema(self.engine):
                raise StoreError("the database has no schema: run `digest init`") from exc
            raise StoreError(f"database error: {exc.__class__.__name__}: {exc.args[0]}") from exc

    def _insert_ignore(self, table: Any) -> Any:
        # Both dialects spell "skip rows that already exist" differently. Callers read the
        # rowcount (1 inserted, 0 skipped): SQLAlchemy keeps it for an INSERT only when asked
        # (on PostgreSQL it is -1 otherwise).
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return (
            dialect.insert(table).on_conflict_do_nothing().execution_options(preserve_rowcount=True)
        )

    # -- lists -------------------------------------------------------------------------------

    def sync_lists(self, configured: Iterable[tuple[str, str]], *, now: datetime) -> None:
        """Make sure every configured (slug, name) has a row; names follow the config."""
        with self._tx() as tx:
            for slug, name in configured:
                tx.execute(self._insert_ignore(lists).values(slug=slug, name=name, created_at=now))
                tx.execute(update(lists).where(lists.c.slug == slug).values(name=name))

    def _list_id(self, tx: Connection, slug: str) -> int:
        found = tx.execute(select(lists.c.id).where(lists.c.slug == slug)).scalar()
        if found is None:
            raise NotFoundError(f"list {slug!r} is not in the database; run `digest init`")
        return int(found)

    # -- articles ----------------------------------------------------------------------------

    def save_articles(
        self, items: Sequence[Article], *, now: datetime, update_existing: bool
    ) -> tuple[int, int]:
        """Insert new articles (and update known ones if asked); returns (inserted, updated)."""
        inserted = updated = 0
        with self._tx() as tx:
            for item in items:
                values = {**_content(item), "published_at": item.published_at, "updated_at": now}
                exists = tx.execute(select(articles.c.id).where(articles.c.id == item.id)).first()
                if exists is None:
                    tx.execute(insert(articles).values(id=item.id, first_seen_at=now, **values))
                    inserted += 1
                elif update_existing:
                    tx.execute(update(articles).where(articles.c.id == item.id).values(**values))
                    updated += 1
        return inserted, updated

    def articles_published(self, *, after: datetime, until: datetime) -> list[Article]:
        """Articles with after < published_at <= until, newest first."""
        query = (
            select(articles)
            .where(articles.c.published_at > after, articles.c.published_at <= until)
            .order_by(articles.c.published_at.desc(), articles.c.id)
        )
        with self._tx() as tx:
            return [_article(row) for row in tx.execute(query).mappings()]

    def articles_by_id(self, ids: Sequence[str]) -> list[Article]:
        """The articles named, in the order named (missing ones are left out)."""
        with self._tx() as tx:
            rows = {
                r["id"]: _article(r)
                for r in tx.execute(select(articles).where(articles.c.id.in_(ids))).mappings()
            }
        return [rows[i] for i in ids if i in rows]

    # -- subscribers -------------------------------------------------------------------------

    def upsert_subscriber(
        self, *, email: str, name: str, locale: str, timezone: str, now: datetime
    ) -> int:
        """The id of the subscriber with this address (case-insensitively), created if new."""
        key = email.lower()
        with self._tx() as tx:
            tx.execute(
                self._insert_ignore(subscribers).values(
                    email=email,
                    email_key=key,
                    name=name,
                    locale=locale,
                    timezone=timezone,
                    created_at=now,
                )
            )
            if name or locale or timezone:
                changes = {
                    k: v
                    for k, v in (("name", name), ("locale", locale), ("timezone", timezone))
                    if v
                }
                tx.execute(
                    update(subscribers).where(subscribers.c.email_key == key).values(**changes)
                )
            return int(
                tx.execute(
                    select(subscribers.c.id).where(subscribers.c.email_key == key)
                ).scalar_one()
            )

    def subscribe(
        self, subscriber_id: int, list_slug: str, status: SubscriptionStatus, *, now: datetime
    ) -> SubscriptionStatus:
        """Set a subscription's status; a suppressed one (unsubscribed, bounced) stays suppressed.

        Returns the status now in force.
        """
        keep = SUPPRESSED if status not in SUPPRESSED else ()
        return self.set_subscription_status(subscriber_id, list_slug, status, now=now, unless=keep)

    def mark_bounced(self, subscriber_id: int, list_slug: str, *, now: datetime) -> None:
        """The mailbox does not exist: stop mailing it on every list, not just `list_slug`."""
        with self._tx() as tx:
            tx.execute(
                update(subscriptions)
                .where(
                    subscriptions.c.subscriber_id == subscriber_id,
                    subscriptions.c.status == SubscriptionStatus.ACTIVE,
                )
                .values(status=SubscriptionStatus.BOUNCED, updated_at=now)
            )

    def subscriber_by_email(self, email: str) -> Subscriber:
        """The subscriber with this address, case-insensitively."""
        with self._tx() as tx:
            row = (
                tx.execute(select(subscribers).where(subscribers.c.email_key == email.lower()))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"no subscriber with address {email!r}")
        return Subscriber(
            id=row["id"],
            email=row["email"],
            name=row["name"],
            locale=row["locale"],
            timezone=row["timezone"],
        )

    def active_subscribers(self, list_slug: str) -> list[Subscriber]:
        """The list's active subscribers, by id."""
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            rows = tx.execute(
                select(subscribers)
                .join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
                .where(
                    subscriptions.c.list_id == list_id,
                    subscriptions.c.status == SubscriptionStatus.ACTIVE,
                )
                .order_by(subscribers.c.id)
            ).mappings()
            return [
                Subscriber(
                    id=r["id"],
                    email=r["email"],
                    name=r["name"],
                    locale=r["locale"],
                    timezone=r["timezone"],
                )
                for r in rows
            ]

    # -- editions ----------------------------------------------------------------------------

    def latest_edition(self, list_slug: str, *, before: date | None = None) -> Edition | None:
        """The list's most recent edition (strictly before `before`, if given)."""
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            query = select(editions).where(editions.c.list_id == list_id)
            if before is not None:
                query = query.where(editions.c.edition_date < before)
            row = (
                tx.execute(query.order_by(editions.c.edition_date.desc()).limit(1))
                .mappings()
                .first()
            )
        return None if row is None else _edition(row, list_slug)

    def edition_for(self, list_slug: str, edition_date: date) -> Edition | None:
        """The list's edition of that date, if it was made."""
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            row = (
                tx.execute(
                    select(editions).where(
                        editions.c.list_id == list_id, editions.c.edition_date == edition_date
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else _edition(row, list_slug)

    def sent_article_ids(self, list_slug: str, *, since: datetime) -> set[str]:
        """Ids of articles that went out in the list's editions made since `since`."""
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            rows = tx.execute(
                select(editions.c.article_ids).where(
                    editions.c.list_id == list_id, editions.c.created_at >= since
                )
            ).scalars()
            return {article_id for ids in rows for article_id in ids}

    def create_edition(
        self,
        *,
        list_slug: str,
        edition_date: date,
        now: datetime,
        cutoff: datetime,
        subject: str,
        html: str,
        text: str,
        article_ids: Sequence[str],
        slot_nonce: str,
    ) -> tuple[Edition, bool]:
        """Store a new edition; if the list already has one for that date, return that instead.

        The unique (list, date) key makes this safe when two processes race: one wins, both
        get the same edition. Returns (edition, created).
        """
        try:
            with self._tx() as tx:
                list_id = self._list_id(tx, list_slug)
                tx.execute(
                    insert(editions).values(
                        list_id=list_id,
                        edition_date=edition_date,
                        created_at=now,
                        cutoff=cutoff,
                        subject=subject,
                        html=html,
                        text=text,
                        article_ids=list(article_ids),
                        slot_nonce=slot_nonce,
                        status=EditionStatus.READY,
                    )
                )
            created = True
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            created = False
        edition = self.edition_for(list_slug, edition_date)
        assert edition is not None
        return edition, created

    def edition_by_id(self, edition_id: int) -> Edition:
        """The edition with this number."""
        with self._tx() as tx:
            row = (
                tx.execute(
                    select(editions, lists.c.slug)
                    .join(lists, lists.c.id == editions.c.list_id)
                    .where(editions.c.id == edition_id)
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"no edition #{edition_id}")
        return _edition(row, row["slug"])

    def requeue_failed(self, edition_id: int, *, now: datetime) -> int:
        """Put an edition's failed deliveries back in the queue; returns how many."""
        with self._tx() as tx:
            done = tx.execute(
                update(deliveries)
                .where(
                    deliveries.c.edition_id == edition_id,
                    deliveries.c.state == DeliveryState.FAILED,
                )
                .values(state=DeliveryState.QUEUED, next_attempt_at=None, updated_at=now)
            )
            return int(done.rowcount)

    def set_edition_status(self, edition_id: int, status: EditionStatus) -> None:
        """Move an edition to `status`."""
        with self._tx() as tx:
            tx.execute(update(editions).where(editions.c.id == edition_id).values(status=status))

    def editions_with_counts(self, *, limit: int = 20) -> list[EditionSummary]:
        """The newest editions with their delivery counts per state."""
        with self._tx() as tx:
            rows = list(
                tx.execute(
                    select(editions, lists.c.slug)
                    .join(lists, lists.c.id == editions.c.list_id)
                    .order_by(editions.c.created_at.desc(), editions.c.id.desc())
                    .limit(limit)
                ).mappings()
            )
            counts: dict[int, dict[str, int]] = {row["id"]: {} for row in rows}
            for edition_id, state, n in tx.execute(
                select(deliveries.c.edition_id, deliveries.c.state, func.count())
                .where(deliveries.c.edition_id.in_(counts))
                .group_by(deliveries.c.edition_id, deliveries.c.state)
            ):
                counts[edition_id][state] = n
            trouble = (DeliveryState.FAILED, DeliveryState.DEFERRED, DeliveryState.UNKNOWN)
            errors = {
                edition_id: tuple(
                    f"{email}: {state}: {reply}"
                    for email, state, reply in tx.execute(
                        select(subscribers.c.email, deliveries.c.state, deliveries.c.last_reply)
                        .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
                        .where(
                            deliveries.c.edition_id == edition_id, deliveries.c.state.in_(trouble)
                        )
                        .order_by(deliveries.c.updated_at.desc())
                        .limit(_RECENT_ERRORS)
                    )
                )
                for edition_id in counts
            }
        return [
            EditionSummary(
                edition=_edition(row, row["slug"]),
                counts=counts[row["id"]],
                recent_errors=errors[row["id"]],
            )
            for row in rows
        ]

    # -- the delivery ledger -----------------------------------------------------------------

    def queue_deliveries(
        self,
        edition: Edition,
        *,
        message_id: Callable[[int], str],
        now: datetime,
        not_before: Callable[[str], datetime | None] | None = None,
    ) -> int:
        """Add a queued row for every active subscriber not yet in the ledger; returns how many.

        `message_id(subscriber_id)` gives the stable Message-ID that every retry reuses.
        `not_before(subscriber_timezone)`, if given, holds each row until that time.
        """
        added, after = 0, 0
        with self._tx() as tx:
            list_id = self._list_id(tx, edition.list_slug)
            # NOT EXISTS probes the ledger's primary key per row; NOT IN would rebuild the
            # whole set of queued ids for every page.
            already = (
                select(deliveries.c.subscriber_id)
                .where(
                    deliveries.c.edition_id == edition.id,
                    deliveries.c.subscriber_id == subscriptions.c.subscriber_id,
                )
                .exists()
            )
            # Page by subscriber id so memory stays flat however long the list is.
            while rows := list(
                tx.execute(
                    select(subscriptions.c.subscriber_id, subscribers.c.timezone)
                    .join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id)
                    .where(
                        subscriptions.c.list_id == list_id,
                        subscriptions.c.status == SubscriptionStatus.ACTIVE,
                        subscriptions.c.subscriber_id > after,
                        ~already,
                    )
                    .order_by(subscriptions.c.subscriber_id)
                    .limit(_QUEUE_PAGE)
                ).all()
            ):
                tx.execute(
                    self._insert_ignore(deliveries),
                    [
                        {
                            "edition_id": edition.id,
                            "subscriber_id": sid,
                            "state": DeliveryState.QUEUED,
                            "attempts": 0,
                            "message_id": message_id(sid),
                            "next_attempt_at": not_before(zone) if not_before else None,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for sid, zone in rows
                    ],
                )
                added += len(rows)
                after = rows[-1].subscriber_id
        return added

    def due_count(self, edition: Edition, *, now: datetime) -> int:
        """How many of the edition's deliveries are due now."""
        with self._tx() as tx:
            return int(tx.execute(select(func.count()).where(_due(edition.id, now))).scalar_one())

    def claim(
        self, edition: Edition, *, owner: str, limit: int, lease: timedelta, now: datetime
    ) -> list[Claim]:
        """Hand out up to `limit` due deliveries to `owner`, committed before any SMTP traffic.

        Due means queued, deferred and due, or sending with an expired lease (its owner died).
        A subscriber who left the list since queueing is marked skipped, not sent.
        """
        due = _due(edition.id, now)
        with self._tx() as tx:
            list_id = self._list_id(tx, edition.list_slug)
            picked: list[Any] = []
            # One indexed, ordered range per kind: no scan over rows already sent, no sort.
            for kind in _due_kinds(edition.id, now):
                if len(picked) >= limit:
                    break
                picked += tx.execute(
                    select(
                        deliveries.c.subscriber_id,
                        deliveries.c.message_id,
                        deliveries.c.attempts,
                        subscriptions.c.status,
                        subscriptions.c.sections,
                    )
                    .join(
                        subscriptions,
                        and_(
                            subscriptions.c.subscriber_id == deliveries.c.subscriber_id,
                            subscriptions.c.list_id == list_id,
                        ),
                    )
                    .where(kind)
                    .order_by(deliveries.c.subscriber_id)
                    .limit(limit - len(picked))
                    # PostgreSQL: rows another worker is claiming are passed over, not waited
                    # for (SQLite has one writer at a time and ignores this).
                    .with_for_update(skip_locked=True, of=deliveries)
                ).all()
            gone = [row.subscriber_id for row in picked if row.status != SubscriptionStatus.ACTIVE]
            keep = {
                row.subscriber_id: (row.message_id, row.attempts, row.sections)
                for row in picked
                if row.status == SubscriptionStatus.ACTIVE
            }
            # Each update checks again that the row is due: another sender may have claimed it
            # between this read and this write, and only the rows this update changed are ours.
            if gone:
                tx.execute(
                    update(deliveries)
                    .where(due, deliveries.c.subscriber_id.in_(gone))
                    .values(
                        state=DeliveryState.SKIPPED,
                        last_reply="left the list before sending",
                        updated_at=now,
                        owner=None,
                    )
                )
            if not keep:
                return []
            claimed = tx.execute(
                update(deliveries)
                .where(due, deliveries.c.subscriber_id.in_(keep))
                .values(
                    state=DeliveryState.SENDING,
                    owner=owner,
                    lease_expires_at=now + lease,
                    attempts=deliveries.c.attempts + 1,
                    updated_at=now,
                )
                .returning(deliveries.c.subscriber_id)
            )
            won = claimed.scalars().all()
            people = tx.execute(
                select(subscribers).where(subscribers.c.id.in_(won)).order_by(subscribers.c.id)
            ).mappings()
            return [
                Claim(
                    edition_id=edition.id,
                    subscriber=Subscriber(
                        id=r["id"],
                        email=r["email"],
                        name=r["name"],
                        locale=r["locale"],
                        timezone=r["timezone"],
                    ),
                    message_id=keep[r["id"]][0],
                    attempts=keep[r["id"]][1] + 1,
                    sections=tuple(keep[r["id"]][2]) if keep[r["id"]][2] else None,
                )
                for r in people
            ]

    def record(self, outcomes: Sequence[Outcome], *, owner: str, now: datetime) -> None:
        """Write results of claimed deliveries in one transaction, where `owner` holds them."""
        if not outcomes:
            return
        # One statement, executed for the whole group: this runs once per commit group on the
        # sending hot path.
        statement = (
            update(deliveries)
            .where(
                deliveries.c.edition_id == bindparam("b_edition"),
                deliveries.c.subscriber_id == bindparam("b_subscriber"),
                deliveries.c.owner == owner,
            )
            .values(
                state=bindparam("b_state"),
                last_reply=bindparam("b_reply"),
                next_attempt_at=bindparam("b_next", type_=UTCDateTime()),
                sent_at=bindparam("b_sent", type_=UTCDateTime()),
                owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        )
        rows = [
            {
                "b_edition": item.edition_id,
                "b_subscriber": item.subscriber_id,
                "b_state": str(item.state),
                "b_reply": item.reply[:1000],
                "b_next": item.next_attempt_at,
                "b_sent": now if item.state == DeliveryState.SENT else None,
            }
            for item in outcomes
        ]
        with self._tx() as tx:
            tx.execute(statement, rows)

    def subscription_sections(self, subscriber_id: int, list_slug: str) -> tuple[str, ...] | None:
        """The sections a subscriber chose on a list, or None for all of them."""
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            chosen = tx.execute(
                select(subscriptions.c.sections).where(
                    subscriptions.c.subscriber_id == subscriber_id,
                    subscriptions.c.list_id == list_id,
                )
            ).scalar()
        return tuple(chosen) if chosen else None

    def sending_owners(self, edition_id: int) -> set[str]:
        """Who holds claims on the edition right now."""
        with self._tx() as tx:
            return set(
                tx.execute(
                    select(deliveries.c.owner)
                    .where(
                        deliveries.c.edition_id == edition_id,
                        deliveries.c.state == DeliveryState.SENDING,
                    )
                    .distinct()
                ).scalars()
            ) - {None}

    def expire_leases(self, edition_id: int, owner: str, *, now: datetime) -> int:
        """End `owner`'s leases at once (it is known dead), so its claims are due again."""
        with self._tx() as tx:
            done = tx.execute(
                update(deliveries)
                .where(
                    deliveries.c.edition_id == edition_id,
                    deliveries.c.state == DeliveryState.SENDING,
                    deliveries.c.owner == owner,
                )
                .values(lease_expires_at=now)
            )
            return int(done.rowcount)

    def release(self, claims: Sequence[Claim], *, owner: str, now: datetime) -> None:
        """Give unsent claims back to the queue (a clean stop before SMTP was tried)."""
        with self._tx() as tx:
            for claim in claims:
                tx.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.edition_id == claim.edition_id,
                        deliveries.c.subscriber_id == claim.subscriber.id,
                        deliveries.c.owner == owner,
                    )
                    .values(
                        state=DeliveryState.QUEUED,
                        owner=None,
                        lease_expires_at=None,
                        attempts=deliveries.c.attempts - 1,
                        updated_at=now,
                    )
                )

    def delivery_counts(self, edition_id: int) -> dict[str, int]:
        """How many deliveries of the edition are in each state."""
        with self._tx() as tx:
            return {
                state: n
                for state, n in tx.execute(
                    select(deliveries.c.state, func.count())
                    .where(deliveries.c.edition_id == edition_id)
                    .group_by(deliveries.c.state)
                )
            }

    def deliveries(self, edition_id: int) -> list[dict[str, Any]]:
        """Every ledger row of the edition, with the subscriber's address, by subscriber id."""
        with self._tx() as tx:
            rows = tx.execute(
                select(deliveries, subscribers.c.email)
                .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
                .where(deliveries.c.edition_id == edition_id)
                .order_by(deliveries.c.subscriber_id)
            ).mappings()
            return [dict(row) for row in rows]

    # -- feeds -------------------------------------------------------------------------------

    def save_feed_articles(
        self, items: Sequence[tuple[str, Article]], *, now: datetime
    ) -> dict[str, int]:
        """Store a feed's articles, each under its identity key (the id before any "~revision").

        A known item keeps the publish time it was first stored with, so an undated item or a
        feed that re-dates its items never pushes an old story back into an edition. Only a new
        revision (resend_updated: an id that differs from the stored one for the same key) takes
        its new id and publish time, which the selection then treats as a new article.
        Returns how many items were "new", "revised", "updated" and "unchanged".
        """
        counts = dict.fromkeys(("new", "revised", "updated", "unchanged"), 0)
        with self._tx() as tx:
            for key, item in items:
                values = _content(item)
                row = (
                    tx.execute(
                        select(articles).where(
                            or_(
                                articles.c.id == key,
                                articles.c.id.startswith(f"{key}~", autoescape=True),
                            )
                        )
                    )
                    .mappings()
                    .first()
                )
                if row is None:
                    tx.execute(
                        insert(articles).values(
                            id=item.id,
                            published_at=item.published_at,
                            first_seen_at=now,
                            updated_at=now,
                            **values,
                        )
                    )
                    counts["new"] += 1
                elif row["id"] != item.id:
                    tx.execute(
                        update(articles)
                        .where(articles.c.id == row["id"])
                        .values(
                            id=item.id, published_at=item.published_at, updated_at=now, **values
                        )
                    )
                    counts["revised"] += 1
                elif any(row[name] != value for name, value in values.items()):
                    tx.execute(
                        update(articles)
                        .where(articles.c.id == item.id)
                        .values(updated_at=now, **values)
                    )
                    counts["updated"] += 1
                else:
                    counts["unchanged"] += 1
        return counts

    def feed_validators(self, url: str) -> tuple[str | None, str | None]:
        """The (ETag, Last-Modified) of the feed's last good answer, for a conditional GET."""
        with self._tx() as tx:
            row = tx.execute(
                select(feed_state.c.etag, feed_state.c.last_modified).where(feed_state.c.url == url)
            ).first()
        return (None, None) if row is None else (row.etag, row.last_modified)

    def record_feed_poll(
        self,
        url: str,
        *,
        now: datetime,
        etag: str | None,
        last_modified: str | None,
        error: str | None,
    ) -> None:
        """Remember a poll's outcome; the validators given replace the stored ones."""
        values = {
            "etag": etag,
            "last_modified": last_modified,
            "last_polled": now,
            "last_error": error,
        }
        with self._tx() as tx:
            tx.execute(self._insert_ignore(feed_state).values(url=url, **values))
            tx.execute(update(feed_state).where(feed_state.c.url == url).values(**values))

    # -- web ---------------------------------------------------------------------------------

    def subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        """The subscriber with this id, or None."""
        with self._tx() as tx:
            row = (
                tx.execute(select(subscribers).where(subscribers.c.id == subscriber_id))
                .mappings()
                .first()
            )
        if row is None:
            return None
        return Subscriber(
            id=row["id"],
            email=row["email"],
            name=row["name"],
            locale=row["locale"],
            timezone=row["timezone"],
        )

    def set_subscriber_name(self, subscriber_id: int, name: str) -> None:
        """Change a subscriber's display name (the one they confirmed)."""
        with self._tx() as tx:
            tx.execute(
                update(subscribers).where(subscribers.c.id == subscriber_id).values(name=name)
            )

    def subscriptions_of(
        self, subscriber_id: int
    ) -> dict[str, tuple[SubscriptionStatus, tuple[str, ...] | None, datetime]]:
        """The subscriber's subscriptions by list slug: (status, chosen sections, updated at).

        Sections None means every section of the list.
        """
        with self._tx() as tx:
            rows = tx.execute(
                select(
                    lists.c.slug,
                    subscriptions.c.status,
                    subscriptions.c.sections,
                    subscriptions.c.updated_at,
                )
                .join(lists, lists.c.id == subscriptions.c.list_id)
                .where(subscriptions.c.subscriber_id == subscriber_id)
            ).all()
        return {
            slug: (
                SubscriptionStatus(status),
                None if sections is None else tuple(sections),
                updated_at,
            )
            for slug, status, sections, updated_at in rows
        }

    def set_subscription_status(
        self,
        subscriber_id: int,
        list_slug: str,
        status: SubscriptionStatus,
        *,
        now: datetime,
        unless: tuple[SubscriptionStatus, ...] = (),
    ) -> SubscriptionStatus:
        """Create or change a subscription's status, leaving it alone when it already is
        `status` or one of `unless`; returns the status now in force.

        Unlike `subscribe`, this can lift a suppression: the web layer calls it only for a
        reader's own confirmed choice.
        """
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            key = and_(
                subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.list_id == list_id
            )
            current = tx.execute(select(subscriptions.c.status).where(key)).scalar()
            if current is None:
                tx.execute(
                    insert(subscriptions).values(
                        subscriber_id=subscriber_id,
                        list_id=list_id,
                        status=status,
                        created_at=now,
                        updated_at=now,
                    )
                )
                return status
            if current == status or current in unless:
                return SubscriptionStatus(current)
            tx.execute(update(subscriptions).where(key).values(status=status, updated_at=now))
            return status

    def unsubscribe(self, subscriber_id: int, list_slug: str, *, now: datetime) -> bool:
        """Stop an active or pending subscription at once; True if this call changed it.

        Idempotent: an unsubscribed or bounced subscription, or none at all, is left alone.
        """
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            done = tx.execute(
                update(subscriptions)
                .where(
                    subscriptions.c.subscriber_id == subscriber_id,
                    subscriptions.c.list_id == list_id,
                    subscriptions.c.status.in_(
                        (SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING)
                    ),
                )
                .values(status=SubscriptionStatus.UNSUBSCRIBED, updated_at=now)
            )
            return bool(done.rowcount)

    def set_sections(
        self, subscriber_id: int, list_slug: str, sections: Sequence[str] | None, *, now: datetime
    ) -> None:
        """Store the sections a subscriber chose for a list (None: every section)."""
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            tx.execute(
                update(subscriptions)
                .where(
                    subscriptions.c.subscriber_id == subscriber_id,
                    subscriptions.c.list_id == list_id,
                )
                .values(sections=null() if sections is None else list(sections), updated_at=now)
            )

    def article_sections(self, *, since: datetime) -> list[str]:
        """The sections of articles published since `since`, alphabetically."""
        with self._tx() as tx:
            return list(
                tx.execute(
                    select(articles.c.section)
                    .where(articles.c.published_at >= since)
                    .distinct()
                    .order_by(articles.c.section)
                ).scalars()
            )

    def archived_editions(self, list_slug: str) -> list[tuple[date, str]]:
        """(date, subject) of every edition of the list whose delivery began, newest first."""
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            rows = tx.execute(
                select(editions.c.edition_date, editions.c.subject)
                .where(editions.c.list_id == list_id, editions.c.status.in_(_STARTED))
                .order_by(editions.c.edition_date.desc())
            ).all()
        return [(day, subject) for day, subject in rows]

    def archived_edition(self, list_slug: str, edition_date: date) -> Edition | None:
        """The list's edition of that date if its delivery began, else None."""
        edition = self.edition_for(list_slug, edition_date)
        return edition if edition is not None and edition.status in _STARTED else None

    # -- subscribers -------------------------------------------------------------------------
    # Imports, `digest subscribers` and `digest bounces`.

    def subscription_status(self, subscriber_id: int, list_slug: str) -> SubscriptionStatus | None:
        """The subscriber's status on the list; None if never subscribed to it."""
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            found = tx.execute(
                select(subscriptions.c.status).where(
                    subscriptions.c.subscriber_id == subscriber_id,
                    subscriptions.c.list_id == list_id,
                )
            ).scalar()
        return None if found is None else SubscriptionStatus(found)

    def enrol(self, items: Sequence[Enrolment], list_slug: str, *, now: datetime) -> list[Enrolled]:
        """Put each person on the list, all in one transaction; returns what changed for each.

        Addresses merge case-insensitively (the first spelling stays). A suppressed
        subscription (unsubscribed, bounced) is never made active or pending again, an active
        one is never sent back to pending, and a blank field never erases a stored one.
        """
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            return [self._enrol_one(tx, list_id, item, now) for item in items]

    def _enrol_one(self, tx: Connection, list_id: int, item: Enrolment, now: datetime) -> Enrolled:
        key = item.email.lower()
        profile = {"name": item.name, "locale": item.locale, "timezone": item.timezone}
        row = (
            tx.execute(select(subscribers).where(subscribers.c.email_key == key)).mappings().first()
        )
        current, changed = None, False
        if row is None:
            subscriber_id = tx.execute(
                insert(subscribers)
                .values(email=item.email, email_key=key, created_at=now, **profile)
                .returning(subscribers.c.id)
            ).scalar_one()
        else:
            subscriber_id = row["id"]
            current = tx.execute(
                select(subscriptions.c.status).where(
                    subscriptions.c.subscriber_id == subscriber_id,
                    subscriptions.c.list_id == list_id,
                )
            ).scalar()
            if current in SUPPRESSED and item.status not in SUPPRESSED:
                return Enrolled.KEPT
            changes = {
                name: value for name, value in profile.items() if value and row[name] != value
            }
            if changes:
                tx.execute(
                    update(subscribers).where(subscribers.c.id == subscriber_id).values(**changes)
                )
            changed = bool(changes)
        if current is None:
            tx.execute(
                insert(subscriptions).values(
                    subscriber_id=subscriber_id,
                    list_id=list_id,
                    status=item.status,
                    created_at=now,
                    updated_at=now,
                )
            )
            return Enrolled.ADDED
        # Whoever is active has confirmed already: a "pending" import does not undo that.
        confirmed = (
            current == SubscriptionStatus.ACTIVE and item.status == SubscriptionStatus.PENDING
        )
        if current != item.status and not confirmed:
            tx.execute(
                update(subscriptions)
                .where(
                    subscriptions.c.subscriber_id == subscriber_id,
                    subscriptions.c.list_id == list_id,
                )
                .values(status=item.status, updated_at=now)
            )
            return Enrolled.UPDATED
        return Enrolled.UPDATED if changed else Enrolled.UNCHANGED

    def subscription_rows(
        self,
        *,
        list_slug: str | None = None,
        status: SubscriptionStatus | None = None,
        page: int = _QUEUE_PAGE,
    ) -> Iterator[SubscriptionRow]:
        """Subscriptions with their subscribers, by subscriber id then list, read a page at a
        time so an export of a long list keeps memory flat and holds no transaction open."""
        after: tuple[int, int] = (0, 0)
        while True:
            with self._tx() as tx:
                query = (
                    select(
                        subscribers.c.id,
                        subscribers.c.email,
                        subscribers.c.name,
                        subscribers.c.locale,
                        subscribers.c.timezone,
                        subscribers.c.soft_bounces,
                        subscriptions.c.list_id,
                        subscriptions.c.status,
                        lists.c.slug,
                    )
                    .join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
                    .join(lists, lists.c.id == subscriptions.c.list_id)
                    .where(
                        or_(
                            subscribers.c.id > after[0],
                            and_(subscribers.c.id == after[0], subscriptions.c.list_id > after[1]),
                        )
                    )
                    .order_by(subscribers.c.id, subscriptions.c.list_id)
                    .limit(page)
                )
                if list_slug is not None:
                    query = query.where(subscriptions.c.list_id == self._list_id(tx, list_slug))
                if status is not None:
                    query = query.where(subscriptions.c.status == status)
                rows = tx.execute(query).mappings().all()
            if not rows:
                return
            for r in rows:
                yield SubscriptionRow(
                    email=r["email"],
                    name=r["name"],
                    locale=r["locale"],
                    timezone=r["timezone"],
                    list_slug=r["slug"],
                    status=SubscriptionStatus(r["status"]),
                    soft_bounces=r["soft_bounces"],
                )
            after = (rows[-1]["id"], rows[-1]["list_id"])

    def apply_bounce(self, event: BounceEvent, *, soft_limit: int, now: datetime) -> AppliedBounce:
        """Apply one bounce event once: a second call with the same key changes nothing.

        The subscriber is the one with the reported address, else the one the ledger's
        Message-ID names. SUPPRESS marks every active subscription bounced. COUNT adds one to
        the soft bounces in a row, unless a message sent since the last counted one did not
        bounce (it got through: the count starts again); the `soft_limit`-th suppresses. A
        bounce whose Message-ID is not in the ledger counts against the subscriber's latest
        sent message. All in one transaction, with the event's key, so a crash counts nothing.
        """
        with self._tx() as tx:
            recorded = tx.execute(
                self._insert_ignore(bounce_events).values(
                    key=event.key,
                    source=event.source[:2000],
                    recipient=event.recipient[:320],
                    kind=event.kind,
                    status=event.status[:16],
                    effect="",
                    processed_at=now,
                )
            )
            if not recorded.rowcount:
                return AppliedBounce(BounceEffect.SEEN)
            delivery = self._bounced_delivery(tx, event)
            person = None
            if event.recipient:
                person = (
                    tx.execute(
                        select(subscribers).where(
                            subscribers.c.email_key == event.recipient.lower()
                        )
                    )
                    .mappings()
                    .first()
                )
            if person is None and delivery is not None:
                person = (
                    tx.execute(
                        select(subscribers).where(subscribers.c.id == delivery.subscriber_id)
                    )
                    .mappings()
                    .first()
                )
            if (
                person is not None
                and delivery is not None
                and delivery.subscriber_id != person["id"]
            ):
                delivery = None  # the address wins; the Message-ID named someone else
            result = AppliedBounce(BounceEffect.UNKNOWN)
            if person is not None:
                named = delivery is not None
                if delivery is None:
                    delivery = tx.execute(
                        select(
                            deliveries.c.edition_id,
                            deliveries.c.subscriber_id,
                            deliveries.c.sent_at,
                        )
                        .where(
                            deliveries.c.subscriber_id == person["id"],
                            deliveries.c.state == DeliveryState.SENT,
                        )
                        .order_by(deliveries.c.sent_at.desc())
                        .limit(1)
                    ).first()
                effect, count = self._bounce_effect(
                    tx, event, person, delivery, soft_limit=soft_limit, now=now
                )
                result = AppliedBounce(
                    effect,
                    email=person["email"],
                    list_slug=event.list_slug if named else None,
                    edition_date=event.edition_date if named else None,
                    soft_bounces=count,
                )
            tx.execute(
                update(bounce_events)
                .where(bounce_events.c.key == event.key)
                .values(
                    effect=result.effect,
                    subscriber_id=person["id"] if person is not None else None,
                    edition_id=delivery.edition_id if delivery is not None else None,
                )
            )
            return result

    def _bounced_delivery(self, tx: Connection, event: BounceEvent) -> Row[Any, Any, Any] | None:
        """The ledger row of the message the Message-ID names, if it is really one of ours."""
        if not (
            event.message_id and event.list_slug and event.edition_date and event.subscriber_id
        ):
            return None
        return tx.execute(
            select(deliveries.c.edition_id, deliveries.c.subscriber_id, deliveries.c.sent_at)
            .join(editions, editions.c.id == deliveries.c.edition_id)
            .join(lists, lists.c.id == editions.c.list_id)
            .where(
                lists.c.slug == event.list_slug,
                editions.c.edition_date == event.edition_date,
                deliveries.c.subscriber_id == event.subscriber_id,
                deliveries.c.message_id == event.message_id,
            )
        ).first()

    def _bounce_effect(
        self,
        tx: Connection,
        event: BounceEvent,
        person: RowMapping,
        delivery: Row[Any, Any, Any] | None,
        *,
        soft_limit: int,
        now: datetime,
    ) -> tuple[BounceEffect, int]:
        subscriber_id, count = person["id"], person["soft_bounces"]
        if event.action == BounceAction.NOTE:
            return BounceEffect.NOTED, count
        if event.action == BounceAction.COUNT:
            point = delivery.sent_at if delivery is not None and delivery.sent_at else now
            last = person["soft_bounced_at"]
            if count and last is not None:
                # Only deliveries with no bounce recorded against them count as got through.
                bounced = select(bounce_events.c.edition_id).where(
                    bounce_events.c.subscriber_id == subscriber_id,
                    bounce_events.c.edition_id.is_not(None),
                )
                got_through = tx.execute(
                    select(func.count()).where(
                        deliveries.c.subscriber_id == subscriber_id,
                        deliveries.c.state == DeliveryState.SENT,
                        deliveries.c.sent_at > min(last, point),
                        deliveries.c.sent_at < max(last, point),
                        deliveries.c.edition_id.not_in(bounced),
                    )
                ).scalar_one()
                count = 1 if got_through else count + 1
            else:
                count = 1
            tx.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id)
                .values(
                    soft_bounces=count,
                    soft_bounced_at=point if last is None else max(last, point),
                )
            )
            if count < soft_limit:
                return BounceEffect.COUNTED, count
        tx.execute(
            update(subscriptions)
            .where(
                subscriptions.c.subscriber_id == subscriber_id,
                subscriptions.c.status == SubscriptionStatus.ACTIVE,
            )
            .values(status=SubscriptionStatus.BOUNCED, updated_at=now)
        )
        return BounceEffect.SUPPRESSED, count

    # -- scheduling --------------------------------------------------------------------------

    def record_run(
        self,
        list_slug: str,
        *,
        slot: datetime,
        outcome: RunOutcome,
        edition_id: int | None,
        detail: str,
        owner: str,
        now: datetime,
    ) -> bool:
        """Remember how a scheduled slot of the list went; returns whether this record stood.

        The first record of a slot stands: two schedulers may both handle it.
        """
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            done = tx.execute(
                self._insert_ignore(schedule_runs).values(
                    list_id=list_id,
                    slot=slot,
                    outcome=outcome,
                    edition_id=edition_id,
                    detail=detail[:1000],
                    owner=owner,
                    recorded_at=now,
                )
            )
            return int(done.rowcount) == 1

    def last_run(self, list_slug: str, *, by_hand: bool = False) -> ListRun | None:
        """The list's latest recorded slot of its schedule, whatever its outcome.

        Sends by hand count only with `by_hand` (what `digest status` shows): the scheduler
        reads the last slot to find the next ones, and a send by hand at 06:30 must not hide
        a 07:00 slot missed the day before.
        """
        runs = self.recent_runs(list_slug=list_slug, limit=1, by_hand=by_hand)
        return runs[0] if runs else None

    def recent_runs(
        self,
        *,
        list_slug: str | None = None,
        outcome: RunOutcome | None = None,
        limit: int = 10,
        by_hand: bool = True,
    ) -> list[ListRun]:
        """Recorded slots, newest first, of one list or all, of one outcome or any; sends by
        hand among them unless `by_hand` is false."""
        query = (
            select(schedule_runs, lists.c.slug)
            .join(lists, lists.c.id == schedule_runs.c.list_id)
            .order_by(schedule_runs.c.slot.desc(), lists.c.slug)
            .limit(limit)
        )
        if list_slug is not None:
            query = query.where(lists.c.slug == list_slug)
        if outcome is not None:
            query = query.where(schedule_runs.c.outcome == outcome)
        if not by_hand:
            query = query.where(schedule_runs.c.outcome != RunOutcome.BY_HAND)
        with self._tx() as tx:
            if list_slug is not None:
                self._list_id(tx, list_slug)  # an unknown list is an error, not "never ran"
            return [
                ListRun(
                    list_slug=row["slug"],
                    slot=row["slot"],
                    outcome=RunOutcome(row["outcome"]),
                    recorded_at=row["recorded_at"],
                    edition_id=row["edition_id"],
                    detail=row["detail"],
                )
                for row in tx.execute(query).mappings()
            ]

    def editions_due(self, *, now: datetime, since: datetime) -> list[Edition]:
        """Editions made since `since`, not paused, with deliveries due now, oldest first.

        What `digest run` sweeps up: held rows whose time came, retries, dead senders' claims.
        """
        with self._tx() as tx:
            rows = tx.execute(
                select(editions, lists.c.slug)
                .join(lists, lists.c.id == editions.c.list_id)
                .where(
                    editions.c.created_at >= since,
                    editions.c.status != EditionStatus.PAUSED,
                    select(deliveries.c.edition_id).where(_due(editions.c.id, now)).exists(),
                )
                .order_by(editions.c.created_at, editions.c.id)
            ).mappings()
            return [_edition(row, row["slug"]) for row in rows]


# The advisory lock that `digest run` processes on one PostgreSQL database contend for.
_LEADER_LOCK = 0x6469676573740001


class Leadership:
    """Whether this process leads the schedule (makes editions) on a shared database.

    PostgreSQL: a session advisory lock held on a connection of its own. The lock lives
    with that connection, so when a leader dies its lock goes and a standby takes over on its
    next try. SQLite is one machine's file: every process leads, and the editions' unique key
    keeps them to one edition per list and date.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    def leads(self) -> bool:
        """True if this process leads now; tries to take the lead if nobody holds it."""
        if self.engine.dialect.name != "postgresql":
            return True
        with self._lock:
            if self._connection is not None:
                try:
                    self._connection.execute(select(1))
                    return True
                except SQLAlchemyError:
                    log.warning("lost the connection that held the schedule's lead")
                    self._drop()
            try:
                connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            except SQLAlchemyError:
                return False
            won = connection.execute(select(func.pg_try_advisory_lock(_LEADER_LOCK))).scalar()
            if not won:
                connection.close()
                return False
            self._connection = connection
            log.info("leading the schedule")
            return True

    def release(self) -> None:
        """Give up the lead (a clean stop), so a standby takes over at once."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except SQLAlchemyError:
                connection.invalidate()
