"""The delivery ledger: one row per subscriber and edition, claimed, leased and recorded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from digest.models import (
    DeliveryState,
    Edition,
    Subscriber,
    SubscriptionStatus,
)
from digest.store.base import StoreBase
from digest.store.schema import (
    UTCDateTime,
    deliveries,
    editions,
    subscribers,
    subscriptions,
)


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


def _claim(edition_id: int, row: Any) -> Claim:
    """A claim from a row of the claiming read (the delivery, its subscription and reader)."""
    return Claim(
        edition_id=edition_id,
        subscriber=Subscriber(
            id=row.subscriber_id,
            email=row.email,
            name=row.name,
            locale=row.locale,
            timezone=row.timezone,
        ),
        message_id=row.message_id,
        attempts=row.attempts + 1,
        sections=tuple(row.sections) if row.sections else None,
    )


def _row(outcome: Outcome, **more: object) -> dict[str, object]:
    """The bound values of one outcome for `LedgerStore.record`."""
    return {
        "b_edition": outcome.edition_id,
        "b_subscriber": outcome.subscriber_id,
        "b_reply": outcome.reply[:1000],
        **more,
    }


class LedgerStore(StoreBase):
    """The delivery ledger: one row per subscriber and edition, claimed, leased and recorded."""

    def due_count(self, edition: Edition, *, now: datetime) -> int:
        """How many of the edition's deliveries are due now."""
        with self._tx(read_only=True) as tx:
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
                        subscribers.c.email,
                        subscribers.c.name,
                        subscribers.c.locale,
                        subscribers.c.timezone,
                    )
                    .join(
                        subscriptions,
                        and_(
                            subscriptions.c.subscriber_id == deliveries.c.subscriber_id,
                            subscriptions.c.list_id == list_id,
                        ),
                    )
                    .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
                    .where(kind)
                    .order_by(deliveries.c.subscriber_id)
                    .limit(limit - len(picked))
                    # PostgreSQL: rows another worker is claiming are passed over, not waited
                    # for (SQLite has one writer at a time and ignores this).
                    .with_for_update(skip_locked=True, of=deliveries)
                ).all()
            gone = [row.subscriber_id for row in picked if row.status != SubscriptionStatus.ACTIVE]
            keep = {
                row.subscriber_id: row for row in picked if row.status == SubscriptionStatus.ACTIVE
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
            won = sorted(claimed.scalars().all())
            return [_claim(edition.id, keep[subscriber_id]) for subscriber_id in won]

    def record(self, outcomes: Sequence[Outcome], *, owner: str, now: datetime) -> None:
        """Write results of claimed deliveries in one transaction, where `owner` holds them."""
        if not outcomes:
            return
        # One statement, executed for the whole group: this runs once per commit group on the
        # sending hot path. Sent rows, nearly all of them, bind no time of their own.
        sent = [item for item in outcomes if item.state == DeliveryState.SENT]
        others = [item for item in outcomes if item.state != DeliveryState.SENT]
        where = (
            deliveries.c.edition_id == bindparam("b_edition"),
            deliveries.c.subscriber_id == bindparam("b_subscriber"),
            deliveries.c.owner == owner,
        )
        done = {"owner": None, "lease_expires_at": None, "updated_at": now}
        with self._tx() as tx:
            if sent:
                tx.execute(
                    update(deliveries)
                    .where(*where)
                    .values(
                        state=DeliveryState.SENT,
                        last_reply=bindparam("b_reply"),
                        next_attempt_at=None,
                        sent_at=now,
                        **done,
                    ),
                    [_row(item) for item in sent],
                )
            if others:
                tx.execute(
                    update(deliveries)
                    .where(*where)
                    .values(
                        state=bindparam("b_state"),
                        last_reply=bindparam("b_reply"),
                        next_attempt_at=bindparam("b_next", type_=UTCDateTime()),
                        sent_at=None,
                        **done,
                    ),
                    [
                        _row(item, b_state=str(item.state), b_next=item.next_attempt_at)
                        for item in others
                    ],
                )

    def sending_owners(self, edition_id: int) -> set[str]:
        """Who holds claims on the edition right now."""
        with self._tx(read_only=True) as tx:
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

    def claim_holders(self, *, since: datetime) -> set[tuple[int, str]]:
        """(edition id, owner) of every claim held on an edition made since `since`."""
        with self._tx(read_only=True) as tx:
            rows = tx.execute(
                select(deliveries.c.edition_id, deliveries.c.owner)
                .join(editions, editions.c.id == deliveries.c.edition_id)
                .where(
                    editions.c.created_at >= since,
                    deliveries.c.state == DeliveryState.SENDING,
                    deliveries.c.owner.is_not(None),
                )
                .distinct()
            )
            return {(int(edition_id), str(owner)) for edition_id, owner in rows}

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
        with self._tx(read_only=True) as tx:
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
        with self._tx(read_only=True) as tx:
            rows = tx.execute(
                select(deliveries, subscribers.c.email)
                .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
                .where(deliveries.c.edition_id == edition_id)
                .order_by(deliveries.c.subscriber_id)
            ).mappings()
            return [dict(row) for row in rows]

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
