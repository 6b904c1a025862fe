"""One-click unsubscribes are committed in batches, each POST waiting for its own row."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.errors import StoreError
from digest.models import UnsubscribeChannel
from digest.operations.journal import Reader, UnsubscribeJournal
from digest.operations.publisher import Publisher
from digest.store import Store
from digest.store.schema import lists, unsubscribes
from digest.web.oneclick import BATCH, OneClickWriter
from tests.conftest import NOW, settings_for
from tests.support.bulk import add_subscribers
from tests.support.web import status_of


def store_with_readers(tmp_path: Path, count: int) -> Store:
    publisher = Publisher(settings_for(tmp_path, 25))
    publisher.init(seed=False, now=NOW)
    add_subscribers(publisher.store.engine, count, now=NOW)
    return publisher.store


@pytest.mark.parametrize(
    ("readers", "batches"),
    [(1, [1]), (50, [50]), (BATCH * 2 + 7, [BATCH, BATCH, 7])],
    ids=["one", "together", "capped"],
)
def test_posts_that_wait_together_share_a_commit(
    tmp_path: Path, readers: int, batches: list[int]
) -> None:
    store = store_with_readers(tmp_path, readers)
    written: list[int] = []

    def write(batch: Sequence[Reader]) -> None:
        store.unsubscribe_all(batch, now=NOW)
        written.append(len(batch))

    # Patient enough that no POST is journaled: this counts the batches alone.
    writer = OneClickWriter(write, journal=UnsubscribeJournal(tmp_path / "journal"), patience=60)
    ids = [store.subscriber_by_email(f"reader{i}@example.com").id for i in range(readers)]

    async def everyone() -> None:
        await asyncio.gather(*(writer.unsubscribe(i, "daily") for i in ids))

    asyncio.run(everyone())
    assert written == batches
    emails = [f"reader{i}@example.com" for i in range(readers)]
    assert {status_of(store, email, "daily") for email in emails} == {"unsubscribed"}


def test_a_failed_write_journals_its_posts_and_the_next_write_applies_them(
    tmp_path: Path,
) -> None:
    store = store_with_readers(tmp_path, 3)
    ids = [store.subscriber_by_email(f"reader{i}@example.com").id for i in range(3)]
    calls: list[int] = []
    journal = UnsubscribeJournal(tmp_path / "journal")

    def write(batch: Sequence[Reader]) -> None:
        calls.append(len(batch))
        if len(calls) == 1:
            raise StoreError("database error: OperationalError: database is locked")
        store.unsubscribe_all(batch, now=NOW)

    writer = OneClickWriter(write, journal=journal)

    async def first_two() -> None:
        await asyncio.gather(*(writer.unsubscribe(i, "daily") for i in ids[:2]))

    asyncio.run(first_two())  # answered, not raised: the two are journaled
    assert sorted(journal.pending()) == sorted(
        (i, "daily", UnsubscribeChannel.ONE_CLICK) for i in ids[:2]
    )
    assert status_of(store, "reader0@example.com", "daily") == "active"
    asyncio.run(writer.unsubscribe(ids[2], "daily"))
    assert calls == [2, 1, 2]  # the next write that succeeded applied the journal
    assert journal.pending() == []
    emails = [f"reader{i}@example.com" for i in range(3)]
    assert {status_of(store, email, "daily") for email in emails} == {"unsubscribed"}


def test_a_batch_changes_each_subscription_once_and_only_what_an_unsubscribe_may(
    tmp_path: Path,
) -> None:
    # One read and one write per list: the rules of one reader at a time must still hold.
    publisher = Publisher(settings_for(tmp_path, 25))
    publisher.init(seed=True, now=NOW)
    store = publisher.store
    ids = {
        email: store.subscriber_by_email(email).id
        for email in (
            "odon.gyori@example.hu",
            "emma.clarke@example.com",
            "piotr.wisniewski@example.com",
        )
    }
    reader, bounced, stranger = ids.values()
    store.mark_bounced(bounced, now=NOW)  # on daily and weekly
    store.unsubscribe_all(
        [
            (reader, "daily", UnsubscribeChannel.ONE_CLICK),
            (reader, "daily", UnsubscribeChannel.PAGE),  # the same reader twice in a batch
            (reader, "weekly", UnsubscribeChannel.PAGE),
            (bounced, "daily", UnsubscribeChannel.ONE_CLICK),
            (stranger, "weekly", UnsubscribeChannel.ONE_CLICK),  # never on weekly
        ],
        now=NOW,
    )
    statuses = {
        (email, slug): status_of(store, email, slug)
        for email in ids
        for slug in ("daily", "weekly", "business")
    }
    assert statuses == {
        ("odon.gyori@example.hu", "daily"): "unsubscribed",
        ("odon.gyori@example.hu", "weekly"): "unsubscribed",
        ("odon.gyori@example.hu", "business"): "active",
        ("emma.clarke@example.com", "daily"): "bounced",  # an unsubscribe never unbounces
        ("emma.clarke@example.com", "weekly"): "bounced",
        ("emma.clarke@example.com", "business"): None,
        ("piotr.wisniewski@example.com", "daily"): None,
        ("piotr.wisniewski@example.com", "weekly"): None,  # none made by an unsubscribe
        ("piotr.wisniewski@example.com", "business"): "active",
    }
    with store.engine.begin() as tx:
        rows = tx.execute(
            select(unsubscribes.c.subscriber_id, lists.c.slug, unsubscribes.c.channel).join(
                lists, lists.c.id == unsubscribes.c.list_id
            )
        ).all()
    assert sorted((sid, slug, str(channel)) for sid, slug, channel in rows) == [
        (reader, "daily", str(UnsubscribeChannel.ONE_CLICK)),  # counted once, by the first
        (reader, "weekly", str(UnsubscribeChannel.PAGE)),
    ]
