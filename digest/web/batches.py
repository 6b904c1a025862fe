"""Writes that many requests make, grouped: a commit per batch, not per request.

A request may wait until its own item is written (a one-click unsubscribe does; a click
does not), but the items that arrive while one batch is being written go together in the
next transaction, so the cost of a commit is shared and the rate is bounded by the
database's writes, not its fsyncs. One-click unsubscribes and counted clicks both go this way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

Item = TypeVar("Item")


class Batches(Generic[Item]):
    """Queues items and hands them to `write` in batches of at most `size`, on a thread."""

    def __init__(self, write: Callable[[Sequence[Item]], None], *, size: int) -> None:
        self._write, self._size = write, size
        self._waiting: list[tuple[Item, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """Items submitted and not yet handed to `write`."""
        return len(self._waiting)

    def submit(self, item: Item) -> asyncio.Future[None]:
        """The future that is done once `item` is written, or holds what the write raised."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None:
            # A task of its own, not the request's: a client that hangs up cannot cancel the
            # write the other waiting requests depend on.
            self._writer = asyncio.create_task(self._drain())
        return future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._size]
                self._waiting = self._waiting[self._size :]
                try:
                    await run_in_threadpool(self._write, [item for item, _ in batch])
                except Exception as exc:  # every request of the batch answers it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._writer = None
