"""Subscriptions: a subscriber's status and sections on each list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, exists, insert, null, select, update
from sqlalchemy.engine import Connection

from digest.models import DeliveryState, SubscriptionStatus, UnsubscribeChannel
from digest.rules import StatusChange, next_status
from digest.store.base import StoreBase
from digest.store.schema import deliveries, editions, lists, subscriptions, unsubscribes

# (subscriber id, list slug, how): one unsubscribe to write.
Leaving = tuple[int, str, UnsubscribeChannel]


class SubscriptionStore(StoreBase):
    """Subscriptions: a subscriber's status and sections on each list."""

    def subscribe(
        self, subscriber_id: int, list_slug: str, status: SubscriptionStatus, *, now: datetime
    ) -> tuple[SubscriptionStatus | None, SubscriptionStatus | None]:
        """The publisher sets a subscription's status (seeds, `digest subscribers remove`,
        a sign-up request); a suppression stays. Returns the status before and after."""
        return self.set_subscription_status(
            subscriber_id, list_slug, status, by=StatusChange.LOAD, now=now
        )  # an unsubscribe this way is the publisher's

    def mark_bounced(self, subscriber_id: int, *, now: datetime) -> None:
        """The mailbox does not exist: stop mailing it on every list."""
        with self._tx() as tx:
            write_status_everywhere(tx, subscriber_id, by=StatusChange.BOUNCE, now=now)

    def subscriptions_of(
        self, subscriber_id: int
    ) -> dict[str, tuple[SubscriptionStatus, tuple[str, ...] | None, datetime]]:
        """The subscriber's subscriptions by list slug: (status, chosen sections, updated at).

        Sections None means every section of the list.
        """
        with self._tx(read_only=True) as tx:
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
        by: StatusChange,
        now: datetime,
    ) -> tuple[SubscriptionStatus | None, SubscriptionStatus | None]:
        """Ask for `status` on the list, as `by`; returns the status before and after (None:
        no subscription). `digest.rules.next_status` decides what `by` may change."""
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            return write_status(tx, subscriber_id, list_id, status, by=by, now=now)

    def unsubscribe(
        self, subscriber_id: int, list_slug: str, *, channel: UnsubscribeChannel, now: datetime
    ) -> bool:
        """Stop an active or pending subscription at once, recording how; True if this call
        changed it.

        Idempotent: an unsubscribed or bounced subscription, or none at all, is left alone.
        """
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            before, after = write_status(
                tx,
                subscriber_id,
                list_id,
                SubscriptionStatus.UNSUBSCRIBED,
                by=StatusChange.UNSUBSCRIBE,
                now=now,
                channel=channel,
            )
            return before != after

    def unsubscribe_all(self, readers: Sequence[Leaving], *, now: datetime) -> None:
        """`unsubscribe` for each (subscriber id, list slug, channel), in one transaction:
        one commit for a batch of one-click POSTs instead of one each, and per list one read
        of the statuses and one write of the changes, not a few statements per reader."""
        by_list: dict[str, list[tuple[int, UnsubscribeChannel]]] = {}
        for subscriber_id, list_slug, channel in readers:
            by_list.setdefault(list_slug, []).append((subscriber_id, channel))
        with self._tx() as tx:
            for list_slug, leaving in by_list.items():
                list_id = self._list_id(tx, list_slug)
                current = dict(
                    tx.execute(
                        select(subscriptions.c.subscriber_id, subscriptions.c.status).where(
                            subscriptions.c.list_id == list_id,
                            subscriptions.c.subscriber_id.in_({sid for sid, _ in leaving}),
                        )
                    ).all()
                )
                gone: dict[int, UnsubscribeChannel] = {}
                for subscriber_id, channel in leaving:
                    status = current.get(subscriber_id)
                    before = None if status is None else SubscriptionStatus(status)
                    after = next_status(
                        before, SubscriptionStatus.UNSUBSCRIBED, by=StatusChange.UNSUBSCRIBE
                    )
                    if after == SubscriptionStatus.UNSUBSCRIBED != before:
                        gone.setdefault(subscriber_id, channel)  # the first of two requests
                store_unsubscribed(tx, list_id, gone, now=now)

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

    def subscription_status(self, subscriber_id: int, list_slug: str) -> SubscriptionStatus | None:
        """The subscriber's status on the list; None if never subscribed to it."""
        with self._tx(read_only=True) as tx:
            return status_of(tx, subscriber_id, self._list_id(tx, list_slug))

    def subscription_sections(self, subscriber_id: int, list_slug: str) -> tuple[str, ...] | None:
        """The sections a subscriber chose on a list, or None for all of them."""
        with self._tx(read_only=True) as tx:
            list_id = self._list_id(tx, list_slug)
            chosen = tx.execute(
                select(subscriptions.c.sections).where(
                    subscriptions.c.subscriber_id == subscriber_id,
                    subscriptions.c.list_id == list_id,
                )
            ).scalar()
        return tuple(chosen) if chosen else None


def status_of(tx: Connection, subscriber_id: int, list_id: int) -> SubscriptionStatus | None:
    """The subscription's status in `tx`; None if there is none."""
    found = tx.execute(
        select(subscriptions.c.status).where(
            subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.list_id == list_id
        )
    ).scalar()
    return None if found is None else SubscriptionStatus(found)


def write_status(
    tx: Connection,
    subscriber_id: int,
    list_id: int,
    wanted: SubscriptionStatus,
    *,
    by: StatusChange,
    now: datetime,
    channel: UnsubscribeChannel = UnsubscribeChannel.PUBLISHER,
) -> tuple[SubscriptionStatus | None, SubscriptionStatus | None]:
    """Apply `next_status` to one subscription in `tx`; returns its status before and after.
    An unsubscribe it makes is recorded as `channel`'s."""
    current = status_of(tx, subscriber_id, list_id)
    after = next_status(current, wanted, by=by)
    store_status(tx, subscriber_id, list_id, current, after, now=now, channel=channel)
    return current, after


def write_status_everywhere(
    tx: Connection, subscriber_id: int, *, by: StatusChange, now: datetime
) -> None:
    """Apply a bounce or a complaint (`by`) to every subscription the subscriber has."""
    wanted = {
        StatusChange.BOUNCE: SubscriptionStatus.BOUNCED,
        StatusChange.COMPLAINT: SubscriptionStatus.COMPLAINED,
    }.get(by, SubscriptionStatus.UNSUBSCRIBED)
    rows = tx.execute(
        select(subscriptions.c.list_id, subscriptions.c.status).where(
            subscriptions.c.subscriber_id == subscriber_id
        )
    ).all()
    for list_id, status in rows:
        current = SubscriptionStatus(status)
        store_status(
            tx, subscriber_id, list_id, current, next_status(current, wanted, by=by), now=now
        )


def store_status(
    tx: Connection,
    subscriber_id: int,
    list_id: int,
    current: SubscriptionStatus | None,
    after: SubscriptionStatus | None,
    *,
    now: datetime,
    channel: UnsubscribeChannel = UnsubscribeChannel.PUBLISHER,
) -> None:
    """The one place a subscription's status is written: created, changed, or left alone
    (with `store_unsubscribed`, which batched one-click unsubscribes call directly).

    A subscription that becomes unsubscribed gets its `unsubscribes` row there, so every path
    that ends one is counted, once."""
    if after is None or after == current:
        return
    if current is None:
        tx.execute(
            insert(subscriptions).values(
                subscriber_id=subscriber_id,
                list_id=list_id,
                status=after,
                created_at=now,
                updated_at=now,
            )
        )
        return
    if after == SubscriptionStatus.UNSUBSCRIBED:
        store_unsubscribed(tx, list_id, {subscriber_id: channel}, now=now)
        return
    tx.execute(
        update(subscriptions)
        .where(subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.list_id == list_id)
        .values(status=after, updated_at=now)
    )


def store_unsubscribed(
    tx: Connection, list_id: int, leaving: dict[int, UnsubscribeChannel], *, now: datetime
) -> None:
    """Mark existing subscriptions of one list unsubscribed, each with its `unsubscribes` row
    (the channel it came by, the edition it is credited to): for one reader or a batch."""
    if not leaving:
        return
    tx.execute(
        update(subscriptions)
        .where(subscriptions.c.list_id == list_id, subscriptions.c.subscriber_id.in_(leaving))
        .values(status=SubscriptionStatus.UNSUBSCRIBED, updated_at=now)
    )
    tx.execute(
        insert(unsubscribes),
        [
            {
                "subscriber_id": subscriber_id,
                "list_id": list_id,
                "edition_id": last_edition_sent(tx, subscriber_id, list_id),
                "channel": channel,
                "unsubscribed_at": now,
            }
            for subscriber_id, channel in leaving.items()
        ],
    )


def last_edition_sent(tx: Connection, subscriber_id: int, list_id: int) -> int | None:
    """The newest edition of the list whose copy was sent to the subscriber, if any."""
    # Walks the list's editions newest first and probes the deliveries' primary key, so it
    # stays cheap however many deliveries there are.
    sent = exists().where(
        and_(
            deliveries.c.edition_id == editions.c.id,
            deliveries.c.subscriber_id == subscriber_id,
            deliveries.c.state == DeliveryState.SENT,
        )
    )
    found = tx.execute(
        select(editions.c.id)
        .where(editions.c.list_id == list_id, sent)
        .order_by(editions.c.edition_date.desc())
        .limit(1)
    ).scalar()
    return None if found is None else int(found)
