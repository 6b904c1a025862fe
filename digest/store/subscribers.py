"""Subscribers: one row per address, found case-insensitively, read a page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select, update

from digest.errors import NotFoundError
from digest.models import (
    Subscriber,
    SubscriptionStatus,
)
from digest.store.base import _QUEUE_PAGE, StoreBase
from digest.store.rows import _subscriber
from digest.store.schema import (
    lists,
    subscribers,
    subscriptions,
)


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


class SubscriberStore(StoreBase):
    """Subscribers: one row per address, found case-insensitively, read a page at a time."""

    def upsert_subscriber(
        self, *, email: str, name: str, locale: str, timezone: str, now: datetime
    ) -> tuple[int, bool]:
        """The id of the subscriber with this address (case-insensitively), created if new,
        and whether this call created it."""
        key = email.lower()
        with self._tx() as tx:
            made = tx.execute(
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
            found = tx.execute(
                select(subscribers.c.id).where(subscribers.c.email_key == key)
            ).scalar_one()
            return int(found), made.rowcount == 1

    def subscriber_by_email(self, email: str) -> Subscriber:
        """The subscriber with this address, case-insensitively."""
        with self._tx(read_only=True) as tx:
            row = (
                tx.execute(select(subscribers).where(subscribers.c.email_key == email.lower()))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"no subscriber with address {email!r}")
        return _subscriber(row)

    def subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        """The subscriber with this id, or None."""
        with self._tx(read_only=True) as tx:
            row = (
                tx.execute(select(subscribers).where(subscribers.c.id == subscriber_id))
                .mappings()
                .first()
            )
        if row is None:
            return None
        return _subscriber(row)

    def set_subscriber_name(self, subscriber_id: int, name: str) -> None:
        """Change a subscriber's display name (the one they confirmed)."""
        with self._tx() as tx:
            tx.execute(
                update(subscribers).where(subscribers.c.id == subscriber_id).values(name=name)
            )

    def active_subscribers(self, list_slug: str) -> list[Subscriber]:
        """The list's active subscribers, by id."""
        with self._tx(read_only=True) as tx:
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
            return [_subscriber(row) for row in rows]

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
            with self._tx(read_only=True) as tx:
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
