"""What the desk reads back after (and during) a send: per-edition totals, recent refusals,
and one subscriber's record. Each page is a fixed number of GROUP BY queries, never one per
row, so a history of many editions costs the same on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection

from digest.models import DeliveryState
from digest.store.base import StoreBase
from digest.store.editions import newest_editions
from digest.store.schema import (
    bounce_events,
    complaints,
    deliveries,
    editions,
    lists,
    subscribers,
    unsubscribes,
)


@dataclass(frozen=True, slots=True)
class EditionTotals:
    """One edition's outcome: its ledger by state, and what readers did after."""

    edition_id: int
    list_slug: str
    edition_date: date
    subject: str
    status: str
    created_at: datetime
    states: dict[str, int]
    bounced: int
    complained: int
    unsubscribed: int

    def state(self, name: DeliveryState) -> int:
        """How many of the edition's deliveries are in `name`."""
        return self.states.get(name, 0)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A delivery the relay refused or put off, with its last SMTP reply."""

    email: str
    state: str
    reply: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryLine:
    """One edition sent (or not) to one subscriber."""

    edition_id: int
    list_slug: str
    edition_date: date
    state: str
    reply: str
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class BounceLine:
    """One bounce report about a subscriber."""

    kind: str
    status: str
    effect: str
    edition_id: int | None
    at: datetime


class HistoryStore(StoreBase):
    """Read-only queries for the desk's sending, history and subscriber pages."""

    def edition_totals(self, *, limit: int = 30) -> list[EditionTotals]:
        """The newest editions with their counts, in four grouped queries."""
        with self._tx(read_only=True) as tx:
            rows = newest_editions(tx, limit)
            ids = [row["id"] for row in rows]
            states: dict[int, dict[str, int]] = {i: {} for i in ids}
            for edition_id, state, n in tx.execute(
                select(deliveries.c.edition_id, deliveries.c.state, func.count())
                .where(deliveries.c.edition_id.in_(ids))
                .group_by(deliveries.c.edition_id, deliveries.c.state)
            ):
                states[edition_id][state] = n
            bounced = _per_edition(tx, bounce_events, ids)
            complained = _per_edition(tx, complaints, ids)
            # Each credited to the newest edition the reader had been sent when they left.
            unsubscribed = _per_edition(tx, unsubscribes, ids)
        return [
            EditionTotals(
                edition_id=row["id"],
                list_slug=row["slug"],
                edition_date=row["edition_date"],
                subject=row["subject"],
                status=row["status"],
                created_at=row["created_at"],
                states=states[row["id"]],
                bounced=bounced.get(row["id"], 0),
                complained=complained.get(row["id"], 0),
                unsubscribed=unsubscribed.get(row["id"], 0),
            )
            for row in rows
        ]

    def sent_between(self, edition_id: int, *, since: datetime, until: datetime) -> int:
        """How many of the edition's messages the relay accepted in [since, until)."""
        with self._tx(read_only=True) as tx:
            return int(
                tx.execute(
                    select(func.count()).where(
                        deliveries.c.edition_id == edition_id,
                        deliveries.c.state == DeliveryState.SENT,
                        deliveries.c.sent_at >= since,
                        deliveries.c.sent_at < until,
                    )
                ).scalar_one()
            )

    def recent_refusals(self, edition_id: int, *, limit: int = 10) -> list[Refusal]:
        """The edition's latest failed, deferred or unknown deliveries, newest first."""
        trouble = (DeliveryState.FAILED, DeliveryState.DEFERRED, DeliveryState.UNKNOWN)
        with self._tx(read_only=True) as tx:
            return [
                Refusal(email=email, state=state, reply=reply or "", at=at)
                for email, state, reply, at in tx.execute(
                    select(
                        subscribers.c.email,
                        deliveries.c.state,
                        deliveries.c.last_reply,
                        deliveries.c.updated_at,
                    )
                    .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
                    .where(deliveries.c.edition_id == edition_id, deliveries.c.state.in_(trouble))
                    .order_by(deliveries.c.updated_at.desc(), deliveries.c.subscriber_id)
                    .limit(limit)
                )
            ]

    def search_subscribers(self, part: str, *, limit: int = 50) -> list[tuple[int, str, str]]:
        """(id, email, name) of subscribers whose address contains `part`, case-insensitively."""
        escaped = part.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self._tx(read_only=True) as tx:
            return [
                (i, email, name)
                for i, email, name in tx.execute(
                    select(subscribers.c.id, subscribers.c.email, subscribers.c.name)
                    .where(subscribers.c.email_key.like(f"%{escaped}%", escape="\\"))
                    .order_by(subscribers.c.email_key)
                    .limit(limit)
                )
            ]

    def deliveries_of(self, subscriber_id: int, *, limit: int = 20) -> list[DeliveryLine]:
        """The subscriber's latest deliveries, newest edition first."""
        with self._tx(read_only=True) as tx:
            return [
                DeliveryLine(
                    edition_id=row["edition_id"],
                    list_slug=row["slug"],
                    edition_date=row["edition_date"],
                    state=row["state"],
                    reply=row["last_reply"] or "",
                    sent_at=row["sent_at"],
                )
                for row in tx.execute(
                    select(
                        deliveries.c.edition_id,
                        deliveries.c.state,
                        deliveries.c.last_reply,
                        deliveries.c.sent_at,
                        editions.c.edition_date,
                        lists.c.slug,
                    )
                    .join(editions, editions.c.id == deliveries.c.edition_id)
                    .join(lists, lists.c.id == editions.c.list_id)
                    .where(deliveries.c.subscriber_id == subscriber_id)
                    .order_by(editions.c.created_at.desc(), editions.c.id.desc())
                    .limit(limit)
                ).mappings()
            ]

    def bounces_of(self, subscriber_id: int, *, limit: int = 20) -> list[BounceLine]:
        """The subscriber's latest bounce reports, newest first."""
        with self._tx(read_only=True) as tx:
            return [
                BounceLine(kind=kind, status=status, effect=effect, edition_id=eid, at=at)
                for kind, status, effect, eid, at in tx.execute(
                    select(
                        bounce_events.c.kind,
                        bounce_events.c.status,
                        bounce_events.c.effect,
                        bounce_events.c.edition_id,
                        bounce_events.c.processed_at,
                    )
                    .where(bounce_events.c.subscriber_id == subscriber_id)
                    .order_by(bounce_events.c.processed_at.desc())
                    .limit(limit)
                )
            ]


def _per_edition(tx: Connection, table: Table, ids: list[int]) -> dict[int, int]:
    """Distinct subscribers per edition in a table of reader events (bounces, complaints,
    unsubscribes)."""
    return {
        edition_id: n
        for edition_id, n in tx.execute(
            select(table.c.edition_id, func.count(table.c.subscriber_id.distinct()))
            .where(table.c.edition_id.in_(ids))
            .group_by(table.c.edition_id)
        )
    }
