"""Clicks written in groups: one row per click, one commit per batch.

A send's links can be followed thousands of times a second. Each request waits until its own
row is committed, but the clicks that arrive while one batch is being written go together in
the next transaction (as one-click unsubscribes do), so the rate is bounded by the database's
writes, not its fsyncs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from digest.store import ClickRow
from digest.web.batches import Batches

# Rows per transaction: bounds how long one batch holds the database's write lock.
BATCH = 1000


class ClickWriter:
    """Queues click rows and writes them in batches on a worker thread."""

    def __init__(self, write: Callable[[Sequence[ClickRow]], None]) -> None:
        self._batches = Batches(write, size=BATCH)

    async def record(self, row: ClickRow) -> None:
        """Return once the click is committed; raises what the write raised."""
        await asyncio.shield(self._batches.submit(row))
