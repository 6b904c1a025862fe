"""Clicks written behind the redirect: one row per click, one commit per batch.

A send's links can be followed thousands of times a second, and the reader waits for the
302, not for our database: a click is queued and answered at once, and the clicks that
arrive while one batch is being written go together in the next transaction (as one-click
unsubscribes do), so the rate is bounded by the database's writes, not its fsyncs, and a
sender holding SQLite's write lock delays the counting, never the reader.

What that costs: clicks queued when the process is killed are not counted (at most what
arrived during one write; a clean stop writes them first), and while the database is behind
by more than BACKLOG clicks the new ones are left uncounted and logged, rather than held in
memory without bound. Counts are statistics; the redirect is what the reader asked for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from digest.errors import DigestError
from digest.store import ClickRow
from digest.web.batches import Batches

log = logging.getLogger(__name__)

# Rows per transaction: bounds how long one batch holds the database's write lock.
BATCH = 1000
# Clicks waiting for the database beyond which new ones are not counted.
BACKLOG = 100_000


class ClickWriter:
    """Queues click rows and writes them in batches on a worker thread, behind the answer."""

    def __init__(
        self, write: Callable[[Sequence[ClickRow]], None], *, backlog: int = BACKLOG
    ) -> None:
        self._write = write
        self._batches = Batches(self._counted, size=BATCH)
        self._backlog = backlog
        self._last: asyncio.Future[None] | None = None
        self._lost = 0

    def record(self, row: ClickRow) -> None:
        """Queue the click; it is written with the next batch (call on the event loop)."""
        if self._batches.waiting >= self._backlog:
            if not self._lost:
                log.warning("clicks are not counted: %d wait for the database", self._backlog)
            self._lost += 1
            return
        if self._lost:
            log.warning("%d clicks were not counted while the database was behind", self._lost)
            self._lost = 0
        self._last = self._batches.submit(row)

    async def flush(self) -> None:
        """Return once every click queued so far is written (or its batch failed)."""
        if self._last is not None and not self._last.done():
            # Batches are written in order: the last one queued is done after all the others.
            await asyncio.wait([self._last])

    def _counted(self, rows: Sequence[ClickRow]) -> None:
        # On the worker thread. Nobody waits on a click's write, so a failed batch is logged
        # here, once, and its clicks are not counted; the next batch is written as usual.
        try:
            self._write(rows)
        except DigestError as exc:
            log.warning("%d clicks not counted: %s", len(rows), exc)
