"""Queueing an edition: a ledger row for every active subscriber, in committed chunks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.sql.selectable import Exists

from digest.models import DeliveryState, Edition, SubscriptionStatus
from digest.store.base import StoreBase
from digest.store.schema import deliveries, subscribers, subscriptions

# Subscribers queued per transaction: other writers wait for one chunk at most (a fraction
# of a second on SQLite), and the first chunk is ready to send almost at once.
QUEUE_CHUNK = 5_000
# The first chunk is small: delivery starts on it.
FIRST_CHUNK = 500


class QueueStore(StoreBase):
    """Queueing an edition: a ledger row for every active subscriber, in committed chunks."""

    def queue_deliveries(
        self,
        edition: Edition,
        *,
        message_id: Callable[[int], str],
        now: datetime,
        not_before: Callable[[str], datetime | None] | None = None,
        chunk: int = QUEUE_CHUNK,
        committed: Callable[[int], None] | None = None,
    ) -> int:
        """Add a queued row for every active subscriber not yet in the ledger; returns how many.

        Each chunk of `chunk` subscribers (by id) is its own transaction, so an unsubscribe or
        `subscribers remove` waits for one chunk, never for the whole list; a run killed
        half-way leaves whole chunks, and running it again queues exactly the rest.
        `committed(added so far)` is called after each commit (delivery may start on it).
        `message_id(subscriber_id)` gives the stable Message-ID that every retry reuses.
        `not_before(subscriber_timezone)`, if given, holds each row until that time.
        """
        added, after, size = 0, 0, FIRST_CHUNK
        already = _in_ledger(edition)
        while True:
            # Read, build and write apart: the Message-IDs (HMACs, most of the time) are made
            # with no lock held, so a claim, an unsubscribe or a removal gets in between.
            with self._tx(read_only=True) as tx:
                list_id = self._list_id(tx, edition.list_slug)
                rows = list(
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
                        .limit(size)
                    ).all()
                )
            if not rows:
                return added
            values = [
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
            ]
            # Rows queued meanwhile by another sender are skipped; a subscriber who left
            # meanwhile is skipped at the claim.
            with self._tx() as tx:
                tx.execute(self._insert_ignore(deliveries), values)
            added += len(rows)
            after = rows[-1].subscriber_id
            size = chunk
            if committed is not None:
                committed(added)

    def unqueued_count(self, edition: Edition) -> int:
        """How many active subscribers `queue_deliveries` would add to the edition now."""
        with self._tx(read_only=True) as tx:
            list_id = self._list_id(tx, edition.list_slug)
            return int(
                tx.execute(
                    select(func.count()).where(
                        subscriptions.c.list_id == list_id,
                        subscriptions.c.status == SubscriptionStatus.ACTIVE,
                        ~_in_ledger(edition),
                    )
                ).scalar_one()
            )


def _in_ledger(edition: Edition) -> Exists:
    """Whether the subscription's subscriber has a row in the edition's ledger.

    NOT EXISTS probes the ledger's primary key per row; NOT IN would rebuild the whole set
    of queued ids for every page.
    """
    return (
        select(deliveries.c.subscriber_id)
        .where(
            deliveries.c.edition_id == edition.id,
            deliveries.c.subscriber_id == subscriptions.c.subscriber_id,
        )
        .exists()
    )
