"""Enrolment: putting many people on a list at once, the write behind imports and `add`.

A batch costs a fixed number of statements, not a few per person: one SELECT of the subscribers
the batch names, one of their subscriptions on the list, then one executemany each for new
subscribers, changed profiles, new subscriptions and changed ones. The decisions are made in
memory, row by row in file order, exactly as one-at-a-time enrolment would make them, so a
later row about the same person sees what an earlier row did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from digest.models import SubscriptionStatus
from digest.rules import SUPPRESSED, StatusChange, next_status
from digest.store.base import StoreBase
from digest.store.schema import subscribers, subscriptions

_PROFILE = ("name", "locale", "timezone")


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


@dataclass(slots=True)
class _Person:
    """What the batch knows of one subscriber: as stored, then as the rows so far left it."""

    id: int | None  # None: new in this batch, inserted at the end
    email: str
    profile: dict[str, str]
    status: SubscriptionStatus | None  # on this list
    stored_status: SubscriptionStatus | None
    changed_profile: set[str] = field(default_factory=set)


class EnrolmentStore(StoreBase):
    """Enrolment of many people on one list in one transaction."""

    def enrol(self, items: Sequence[Enrolment], list_slug: str, *, now: datetime) -> list[Enrolled]:
        """Put each person on the list, all in one transaction; returns what changed for each.

        Addresses merge case-insensitively (the first spelling stays). A suppressed
        subscription (unsubscribed, bounced) is never made active or pending again, an active
        one is never sent back to pending, and a blank field never erases a stored one.
        """
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            people = _load(tx, list_id, {item.email.lower() for item in items})
            outcomes = [_decide(people, item) for item in items]
            _write(tx, list_id, people, now=now)
        return outcomes


def _load(tx: Connection, list_id: int, keys: set[str]) -> dict[str, _Person]:
    people: dict[str, _Person] = {}
    if not keys:
        return people
    rows = tx.execute(
        select(
            subscribers.c.id,
            subscribers.c.email,
            subscribers.c.email_key,
            subscribers.c.name,
            subscribers.c.locale,
            subscribers.c.timezone,
            subscriptions.c.status,
        )
        .select_from(
            subscribers.outerjoin(
                subscriptions,
                and_(
                    subscriptions.c.subscriber_id == subscribers.c.id,
                    subscriptions.c.list_id == list_id,
                ),
            )
        )
        .where(subscribers.c.email_key.in_(sorted(keys)))
    ).all()
    for row in rows:
        status = None if row.status is None else SubscriptionStatus(row.status)
        people[row.email_key] = _Person(
            id=row.id,
            email=row.email,
            profile={"name": row.name, "locale": row.locale, "timezone": row.timezone},
            status=status,
            stored_status=status,
        )
    return people


def _decide(people: dict[str, _Person], item: Enrolment) -> Enrolled:
    """One row's effect on the batch's picture of that person; returns what it changed."""
    key = item.email.lower()
    given = {"name": item.name, "locale": item.locale, "timezone": item.timezone}
    known = people.get(key)
    if known is None:
        known = people[key] = _Person(
            id=None, email=item.email, profile=given, status=None, stored_status=None
        )
        current = None
        changed = False
    else:
        current = known.status
        if current in SUPPRESSED and item.status not in SUPPRESSED:
            return Enrolled.KEPT  # before the profile too: a suppressed record stays as it is
        changes = {name for name, value in given.items() if value and known.profile[name] != value}
        for name in changes:
            known.profile[name] = given[name]
        known.changed_profile |= changes
        changed = bool(changes)
    after = next_status(current, item.status, by=StatusChange.LOAD)
    if after is not None:
        known.status = after
    if current is None:
        return Enrolled.ADDED
    return Enrolled.UPDATED if changed or after != current else Enrolled.UNCHANGED


def _write(tx: Connection, list_id: int, people: dict[str, _Person], *, now: datetime) -> None:
    new = {key: person for key, person in people.items() if person.id is None}
    if new:
        rows = [
            {"email": person.email, "email_key": key, "created_at": now, **person.profile}
            for key, person in new.items()
        ]
        inserted = tx.execute(
            insert(subscribers).returning(subscribers.c.email_key, subscribers.c.id), rows
        ).all()
        for key, subscriber_id in inserted:
            new[key].id = subscriber_id
    profiles = [
        {"b_id": person.id, **{f"b_{name}": person.profile[name] for name in _PROFILE}}
        for key, person in people.items()
        if person.changed_profile and key not in new
    ]
    if profiles:
        tx.execute(
            update(subscribers)
            .where(subscribers.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}") for name in _PROFILE}),
            profiles,
        )
    created = [
        {
            "subscriber_id": person.id,
            "list_id": list_id,
            "status": person.status,
            "created_at": now,
            "updated_at": now,
        }
        for person in people.values()
        if person.stored_status is None and person.status is not None
    ]
    if created:
        tx.execute(insert(subscriptions), created)
    changed = [
        {"b_id": person.id, "b_status": person.status}
        for person in people.values()
        if person.stored_status is not None and person.status != person.stored_status
    ]
    if changed:
        tx.execute(
            update(subscriptions)
            .where(
                subscriptions.c.subscriber_id == bindparam("b_id"),
                subscriptions.c.list_id == list_id,
            )
            .values(status=bindparam("b_status"), updated_at=now),
            changed,
        )
