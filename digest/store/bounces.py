"""Bounce events: each applied once, to the subscriber and delivery they concern."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Row, RowMapping

from digest.models import (
    DeliveryState,
)
from digest.rules import BounceAction, BounceEffect, StatusChange, bounce_outcome
from digest.store.base import StoreBase
from digest.store.schema import (
    bounce_events,
    deliveries,
    editions,
    lists,
    subscribers,
)
from digest.store.subscriptions import write_status_everywhere


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
    # From a VERP token the report came back to: the edition and (in subscriber_id) the
    # subscriber. Trusted if the ledger holds that delivery, and then it wins over the address.
    edition_id: int | None = None


@dataclass(frozen=True, slots=True)
class AppliedBounce:
    """The result of `Store.apply_bounce`: whom it concerned and what changed."""

    effect: BounceEffect
    email: str | None = None  # the subscriber's stored address
    list_slug: str | None = None  # the list and edition of the bounced message, when known
    edition_date: date | None = None
    soft_bounces: int = 0  # the count in a row, after this one


class BounceStore(StoreBase):
    """Bounce events: each applied once, to the subscriber and delivery they concern."""

    def apply_bounce(self, event: BounceEvent, *, soft_limit: int, now: datetime) -> AppliedBounce:
        """Apply one bounce event once: a second call with the same key changes nothing.

        The subscriber is the one whose delivery a VERP token names, else the one with the
        reported address, else the one the ledger's Message-ID names. SUPPRESS marks every
        active subscription bounced. COUNT adds one to the soft bounces in a row, unless a
        message sent since the last counted one did not bounce (it got through: the count
        starts again); the `soft_limit`-th suppresses. A bounce whose Message-ID is not in the
        ledger counts against the subscriber's latest sent message. All in one transaction,
        with the event's key, so a crash counts nothing.
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
            if event.edition_id is not None and delivery is not None:
                person = self._person(tx, delivery.subscriber_id)
            elif event.recipient:
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
                person = self._person(tx, delivery.subscriber_id)
            if (
                person is not None
                and delivery is not None
                and delivery.subscriber_id != person["id"]
            ):
                delivery = None  # the address wins; the Message-ID named someone else
            result = AppliedBounce(BounceEffect.UNKNOWN)
            if person is not None:
                named = delivery.edition_id if delivery is not None else None
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
                slug, day = edition_of(tx, named) if named is not None else (None, None)
                result = AppliedBounce(
                    effect,
                    email=person["email"],
                    list_slug=slug,
                    edition_date=day,
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

    def _person(self, tx: Connection, subscriber_id: int) -> RowMapping | None:
        return (
            tx.execute(select(subscribers).where(subscribers.c.id == subscriber_id))
            .mappings()
            .first()
        )

    def _bounced_delivery(self, tx: Connection, event: BounceEvent) -> Row[Any, Any, Any] | None:
        """The ledger row of the message the VERP token or the Message-ID names, if it is
        really one of ours."""
        columns = (deliveries.c.edition_id, deliveries.c.subscriber_id, deliveries.c.sent_at)
        if event.edition_id is not None and event.subscriber_id is not None:
            return tx.execute(
                select(*columns).where(
                    deliveries.c.edition_id == event.edition_id,
                    deliveries.c.subscriber_id == event.subscriber_id,
                )
            ).first()
        if not (
            event.message_id and event.list_slug and event.edition_date and event.subscriber_id
        ):
            return None
        return tx.execute(
            select(*columns)
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
        """Load the facts `bounce_outcome` decides on, then write what it decided."""
        subscriber_id, count, last = person["id"], person["soft_bounces"], person["soft_bounced_at"]
        point = delivery.sent_at if delivery is not None and delivery.sent_at else now
        got_through = False
        if event.action is BounceAction.COUNT and count and last is not None:
            # Only deliveries with no bounce recorded against them count as got through.
            bounced = select(bounce_events.c.edition_id).where(
                bounce_events.c.subscriber_id == subscriber_id,
                bounce_events.c.edition_id.is_not(None),
            )
            got_through = bool(
                tx.execute(
                    select(func.count()).where(
                        deliveries.c.subscriber_id == subscriber_id,
                        deliveries.c.state == DeliveryState.SENT,
                        deliveries.c.sent_at > min(last, point),
                        deliveries.c.sent_at < max(last, point),
                        deliveries.c.edition_id.not_in(bounced),
                    )
                ).scalar_one()
            )
        effect, count = bounce_outcome(
            event.action,
            soft_bounces=count if last is not None else 0,
            got_through=got_through,
            soft_limit=soft_limit,
        )
        if event.action is BounceAction.COUNT:
            tx.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id)
                .values(
                    soft_bounces=count,
                    soft_bounced_at=point if last is None else max(last, point),
                )
            )
        if effect is BounceEffect.SUPPRESSED:
            write_status_everywhere(tx, subscriber_id, by=StatusChange.BOUNCE, now=now)
        return effect, count


def edition_of(tx: Connection, edition_id: int) -> tuple[str | None, date | None]:
    """The list slug and date of an edition, for the lines `digest bounces` prints."""
    found = tx.execute(
        select(lists.c.slug, editions.c.edition_date)
        .join(lists, lists.c.id == editions.c.list_id)
        .where(editions.c.id == edition_id)
    ).first()
    return (found[0], found[1]) if found else (None, None)
