"""One-click unsubscribes are committed in batches, each POST waiting for its own row."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from digest.errors import StoreError
from digest.operations.publisher import Publisher
from digest.store import Store
from digest.web.oneclick import BATCH, OneClickWriter, Reader
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

    writer = OneClickWriter(write)
    ids = [store.subscriber_by_email(f"reader{i}@example.com").id for i in range(readers)]

    async def everyone() -> None:
        await asyncio.gather(*(writer.unsubscribe(i, "daily") for i in ids))

    asyncio.run(everyone())
    assert written == batches
    emails = [f"reader{i}@example.com" for i in range(readers)]
    assert {status_of(store, email, "daily") for email in emails} == {"unsubscribed"}


def test_a_failed_write_fails_every_post_of_its_batch_and_the_next_batch_goes_on(
    tmp_path: Path,
) -> None:
    store = store_with_readers(tmp_path, 3)
    ids = [store.subscriber_by_email(f"reader{i}@example.com").id for i in range(3)]
    calls: list[int] = []

    def write(batch: Sequence[Reader]) -> None:
        calls.append(len(batch))
        if len(calls) == 1:
            raise StoreError("database error: OperationalError: database is locked")
        store.unsubscribe_all(batch, now=NOW)

    writer = OneClickWriter(write)

    async def twice() -> list[BaseException | None]:
        first = await asyncio.gather(
            *(writer.unsubscribe(i, "daily") for i in ids[:2]), return_exceptions=True
        )
        await writer.unsubscribe(ids[2], "daily")
        return list(first)

    failed = asyncio.run(twice())
    assert [type(exc) for exc in failed] == [StoreError, StoreError]
    assert calls == [2, 1]
    assert status_of(store, "reader0@example.com", "daily") == "active"
    assert status_of(store, "reader2@example.com", "daily") == "unsubscribed"
