"""Clicks written in groups: one row per click, one commit per batch.

A send's links can be followed thousands of times a second. Each request waits until its own
row is committed, but the clicks that arrive while one batch is being written go together in
the next transaction (as one-click unsubscribes do), so the rate is bounded by the database's
writes, not its fsyncs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from starlette.concurrency import run_in_threadpool

from digest.store import ClickRow

# Rows per transaction: bounds how long one batch holds the database's write lock.
BATCH = 1000


class ClickWriter:
    """Queues click rows and writes them in batches on a worker thread."""

    def __init__(self, write: Callable[[Sequence[ClickRow]], None]) -> None:
        self._write = write
        self._waiting: list[tuple[ClickRow, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, row: ClickRow) -> None:
        """Return once the click is committed; raises what the write raised."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, future))
        if self._writer is None:
            # Its own task: a reader who hangs up cannot cancel the batch others wait for.
            self._writer = asyncio.create_task(self._drain())
        await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
                try:
                    await run_in_threadpool(self._write, [row for row, _ in batch])
                except Exception as exc:  # every click of the batch answers it
                    for _, future in batch:
                        future.set_exception(exc)
                else:
                    for _, future in batch:
                        future.set_result(None)
        finally:
            self._writer = None
