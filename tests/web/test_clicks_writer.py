"""The click writer: clicks queued behind the answer, written in batches, none held without
bound, and a failed batch logged instead of raised at a reader."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence

import pytest

from digest.errors import StoreError
from digest.store import ClickRow
from digest.web.clicks_writer import BATCH, ClickWriter
from tests.conftest import NOW


def row(n: int) -> ClickRow:
    return ClickRow(
        edition_id=1,
        article_id=f"a{n}",
        subscriber_id=None,
        kind="click",
        machine=False,
        reason="",
        clicked_at=NOW,
    )


def test_clicks_queued_while_a_batch_is_written_go_together_in_the_next() -> None:
    batches: list[int] = []
    writer = ClickWriter(lambda rows: batches.append(len(rows)))

    async def clicks() -> None:
        for n in range(BATCH * 2 + 5):
            writer.record(row(n))
        await writer.flush()

    asyncio.run(clicks())
    assert batches == [BATCH, BATCH, 5]


def test_past_the_backlog_clicks_are_not_counted_and_that_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate, writing = threading.Event(), threading.Event()
    written: list[str] = []

    def stuck(rows: Sequence[ClickRow]) -> None:  # a database that is far behind
        writing.set()
        assert gate.wait(30)
        written.extend(r.article_id for r in rows)

    writer = ClickWriter(stuck, backlog=3)

    async def clicks() -> None:
        writer.record(row(0))  # handed to the writer at once
        assert await asyncio.to_thread(writing.wait, 30)  # its batch is being written
        for n in range(1, 6):  # three wait, two are left out
            writer.record(row(n))
        gate.set()
        await writer.flush()
        writer.record(row(6))  # the database caught up: counted again, the loss reported
        await writer.flush()

    with caplog.at_level(logging.WARNING, logger="digest.web.clicks_writer"):
        asyncio.run(clicks())
    assert written == ["a0", "a1", "a2", "a3", "a6"]
    assert "2 clicks were not counted" in caplog.text


def test_a_failed_batch_is_logged_and_the_next_one_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    written: list[int] = []

    def flaky(rows: Sequence[ClickRow]) -> None:
        if not written:
            written.append(0)
            raise StoreError("database is locked")
        written.append(len(rows))

    writer = ClickWriter(flaky)

    async def clicks() -> None:
        writer.record(row(0))
        await writer.flush()
        writer.record(row(1))
        await writer.flush()

    with caplog.at_level(logging.WARNING, logger="digest.web.clicks_writer"):
        asyncio.run(clicks())
    assert written == [0, 1]
    assert "1 clicks not counted: database is locked" in caplog.text
