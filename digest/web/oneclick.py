"""One-click unsubscribes written in groups: a commit per batch, not per POST.

A mailbox provider can post thousands of one-click unsubscribes a second. Each POST waits
until its own row is committed (so its 200 means the reader is unsubscribed), but the POSTs
that arrive while one batch is being written go together in the next transaction: the cost of
a commit is shared, and the rate is bounded by the database's writes, not its fsyncs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from starlette.concurrency import run_in_threadpool

# Rows per transaction: bounds how long one batch holds the database's write lock.
BATCH = 500

Reader = tuple[int, str]  # (subscriber id, list slug)


class OneClickWriter:
    """Queues readers to unsubscribe and writes them in batches on a worker thread."""

    def __init__(self, write: Callable[[Sequence[Reader]], None]) -> None:
        self._write = write
        self._waiting: list[tuple[Reader, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def unsubscribe(self, subscriber_id: int, list_slug: str) -> None:
        """Return once the reader's unsubscribe is committed; raises what the write raised."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(((subscriber_id, list_slug), future))
        if self._writer is None:
            # A task of its own, not the request's: a client that hangs up cannot cancel the
            # write the other waiting POSTs depend on.
            self._writer = asyncio.create_task(self._drain())
        await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
                try:
                    await run_in_threadpool(self._write, [reader for reader, _ in batch])
                except Exception as exc:  # every POST of the batch answers it
                    for _, future in batch:
                        future.set_exception(exc)
                else:
                    for _, future in batch:
                        future.set_result(None)
        finally:
            self._writer = None
