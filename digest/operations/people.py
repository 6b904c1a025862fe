"""The desk's subscriber pages: find people, read one record, change a subscription, and
import a CSV upload through the same code (and the same line-numbered report) as the CLI."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from digest.errors import InvalidInputError, NotFoundError
from digest.models import Subscriber, SubscriptionStatus, UnsubscribeChannel
from digest.operations.subscribers import ImportReport, import_file
from digest.rules import StatusChange
from digest.store import BounceLine, DeliveryLine, Store


@dataclass(frozen=True, slots=True)
class SubscriptionLine:
    """One list the person is on, with the sections they chose (None: every section)."""

    list_slug: str
    status: SubscriptionStatus
    sections: tuple[str, ...] | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Person:
    """One subscriber's record as the desk shows it."""

    subscriber: Subscriber
    subscriptions: tuple[SubscriptionLine, ...]
    bounces: tuple[BounceLine, ...]
    deliveries: tuple[DeliveryLine, ...]


def search(store: Store, part: str) -> list[tuple[int, str, str]]:
    """Subscribers whose address contains `part` (at least two characters)."""
    part = part.strip()
    if len(part) < 2:
        return []
    return store.search_subscribers(part[:320])


def person(store: Store, subscriber_id: int) -> Person:
    """The subscriber's subscriptions, bounces and latest deliveries."""
    subscriber = store.subscriber_by_id(subscriber_id)
    if subscriber is None:
        raise NotFoundError(f"no subscriber #{subscriber_id}")
    subscriptions = tuple(
        SubscriptionLine(list_slug=slug, status=status, sections=sections, updated_at=at)
        for slug, (status, sections, at) in sorted(store.subscriptions_of(subscriber.id).items())
    )
    return Person(
        subscriber=subscriber,
        subscriptions=subscriptions,
        bounces=tuple(store.bounces_of(subscriber.id)),
        deliveries=tuple(store.deliveries_of(subscriber.id)),
    )


def unsubscribe(store: Store, subscriber_id: int, list_slug: str, *, now: datetime) -> bool:
    """Take the person off the list at once; True if it changed anything."""
    return store.unsubscribe(
        subscriber_id, list_slug, channel=UnsubscribeChannel.PUBLISHER, now=now
    )


def resubscribe(store: Store, subscriber_id: int, list_slug: str, *, now: datetime) -> bool:
    """Put the person back on the list; True if it changed anything.

    The editor acts on the reader's own request here (a reply, a phone call), which is why
    it may lift an unsubscribe or a bounce, as the reader's preferences page may.
    """
    if list_slug not in store.subscriptions_of(subscriber_id):
        raise InvalidInputError(f"subscriber #{subscriber_id} was never on {list_slug}")
    before, after = store.set_subscription_status(
        subscriber_id, list_slug, SubscriptionStatus.ACTIVE, by=StatusChange.READER, now=now
    )
    return before != after


def import_upload(
    store: Store,
    data: bytes,
    *,
    list_slug: str,
    status: SubscriptionStatus,
    now: datetime,
    delimiter: str | None = None,
) -> ImportReport:
    """Import an uploaded CSV exactly as `digest subscribers import` reads a file."""
    handle, name = tempfile.mkstemp(suffix=".csv")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        return import_file(
            store, Path(name), list_slug=list_slug, status=status, now=now, delimiter=delimiter
        )
    finally:
        os.unlink(name)


def report_lines(report: ImportReport, *, name: str) -> list[str]:
    """The lines the CLI prints for an import, in its order, naming the file as it does."""
    lines = []
    if report.ignored_columns:
        lines.append(f"{name}: ignored columns: {', '.join(report.ignored_columns)}")
    lines += [f"{name} {line}" for line in (*report.rejected, *report.notes)]
    lines.append(f"{name}: {report.summary()}")
    return lines
