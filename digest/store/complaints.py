"""Complaints (ARF reports): each recorded once, and the subscriber it names suppressed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, RowMapping

from digest.rules import StatusChange
from digest.store.base import StoreBase
from digest.store.bounces import edition_of
from digest.store.schema import complaints, deliveries, editions, lists, subscribers
from digest.store.subscriptions import write_status_everywhere


class NamedBy(StrEnum):
    """What in a report named the subscriber: only what we signed counts."""

    VERP = "verp"  # the envelope sender's token: edition and subscriber
    MESSAGE_ID = "message-id"  # the sealed Message-ID: list, edition date and subscriber
    UNSUBSCRIBE_TOKEN = "unsubscribe-token"  # the List-Unsubscribe token: list and subscriber
    NOTHING = ""


@dataclass(frozen=True, slots=True)
class Attribution:
    """One signed claim of whom a report concerns; the database must confirm it."""

    named_by: NamedBy
    subscriber_id: int
    edition_id: int | None = None  # VERP
    message_id: str | None = None  # Message-ID, with its list and edition date
    list_slug: str | None = None  # Message-ID and unsubscribe token
    edition_date: date | None = None


@dataclass(frozen=True, slots=True)
class ComplaintEvent:
    """One feedback report, ready for `Store.apply_complaint`."""

    key: str  # the same report read twice has the same key
    source: str
    feedback_type: str
    user_agent: str
    reported_domain: str
    arrived_at: datetime | None
    suppress: bool  # False for reports that are no complaint (not-spam, auth-failure)
    claims: tuple[Attribution, ...]  # in the order to try them


class ComplaintEffect(StrEnum):
    """What applying a complaint did."""

    SEEN = "already processed"
    UNATTRIBUTED = "unattributed"  # nothing we signed named a subscriber we know
    SUPPRESSED = "suppressed"
    NOTED = "noted"  # attributed, but a report type that suppresses nobody


@dataclass(frozen=True, slots=True)
class AppliedComplaint:
    """The result of `Store.apply_complaint`."""

    effect: ComplaintEffect
    email: str | None = None
    named_by: NamedBy = NamedBy.NOTHING
    list_slug: str | None = None  # the list and edition complained of, when known
    edition_date: date | None = None


def confirmed_edition(tx: Connection, claim: Attribution) -> tuple[int | None, bool]:
    """(edition id or None, whether the ledger or the lists confirm the claim)."""
    if claim.named_by is NamedBy.VERP:
        found = tx.execute(
            select(deliveries.c.edition_id).where(
                deliveries.c.edition_id == claim.edition_id,
                deliveries.c.subscriber_id == claim.subscriber_id,
            )
        ).scalar()
        return found, found is not None
    if claim.named_by is NamedBy.MESSAGE_ID:
        found = tx.execute(
            select(deliveries.c.edition_id)
            .join(editions, editions.c.id == deliveries.c.edition_id)
            .join(lists, lists.c.id == editions.c.list_id)
            .where(
                lists.c.slug == claim.list_slug,
                editions.c.edition_date == claim.edition_date,
                deliveries.c.subscriber_id == claim.subscriber_id,
                deliveries.c.message_id == claim.message_id,
            )
        ).scalar()
        return found, found is not None
    # An unsubscribe token names no edition; the signature is the proof.
    return None, claim.named_by is NamedBy.UNSUBSCRIBE_TOKEN


class ComplaintStore(StoreBase):
    """Complaints: each recorded once, and the subscriber it names suppressed."""

    def apply_complaint(self, event: ComplaintEvent, *, now: datetime) -> AppliedComplaint:
        """Record one report once (a second call with its key changes nothing) and, if it is
        a complaint, mark every subscription of the subscriber it names complained.

        The subscriber is the first claim the database confirms (a VERP or Message-ID claim
        needs its delivery in the ledger); without one, the report is recorded and nobody is
        touched. All in one transaction.
        """
        with self._tx() as tx:
            recorded = tx.execute(
                self._insert_ignore(complaints).values(
                    key=event.key,
                    source=event.source[:2000],
                    feedback_type=event.feedback_type[:32],
                    user_agent=event.user_agent,
                    reported_domain=event.reported_domain[:255],
                    arrived_at=event.arrived_at,
                    named_by=NamedBy.NOTHING,
                    effect="",
                    processed_at=now,
                )
            )
            if not recorded.rowcount:
                return AppliedComplaint(ComplaintEffect.SEEN)
            result, person, edition_id = AppliedComplaint(ComplaintEffect.UNATTRIBUTED), None, None
            for claim in event.claims:
                person = self._subscriber(tx, claim.subscriber_id)
                edition_id, confirmed = confirmed_edition(tx, claim)
                if person is None or not confirmed:
                    person, edition_id = None, None
                    continue
                effect = ComplaintEffect.SUPPRESSED if event.suppress else ComplaintEffect.NOTED
                if event.suppress:
                    write_status_everywhere(tx, person["id"], by=StatusChange.COMPLAINT, now=now)
                slug, day = claim.list_slug, claim.edition_date
                if edition_id is not None:
                    slug, day = edition_of(tx, edition_id)
                result = AppliedComplaint(
                    effect,
                    email=person["email"],
                    named_by=claim.named_by,
                    list_slug=slug,
                    edition_date=day,
                )
                break
            tx.execute(
                update(complaints)
                .where(complaints.c.key == event.key)
                .values(
                    effect=result.effect,
                    named_by=result.named_by,
                    subscriber_id=person["id"] if person is not None else None,
                    edition_id=edition_id,
                )
            )
            return result

    def _subscriber(self, tx: Connection, subscriber_id: int) -> RowMapping | None:
        return (
            tx.execute(select(subscribers).where(subscribers.c.id == subscriber_id))
            .mappings()
            .first()
        )
