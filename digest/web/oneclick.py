"""One-click unsubscribes written in groups: a commit per batch, not per POST.

A mailbox provider can post thousands of one-click unsubscribes a second. Each POST waits
until its own row is committed (so its 200 means the reader is unsubscribed), but the POSTs
that arrive while one batch is being written go together in the next transaction: the cost of
a commit is shared, and the rate is bounded by the database's writes, not its fsyncs.

A POST is never refused because the database is busy: when its batch is not committed within
`patience` seconds (another process holds the write lock), or the write fails, the reader is
appended to the unsubscribe journal and the POST answered; the journal is applied after the
next write that succeeds, and by every delivery before it claims.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from starlette.concurrency import run_in_threadpool

from digest.errors import DigestError
from digest.models import UnsubscribeChannel
from digest.operations.journal import Reader, UnsubscribeJournal
from digest.web.batches import Batches

log = logging.getLogger(__name__)

# Rows per transaction: bounds how long one batch holds the database's write lock.
BATCH = 500
# Seconds a POST waits for its commit before its reader is journaled instead.
PATIENCE = 1.0


class OneClickWriter:
    """Queues readers to unsubscribe and writes them in batches on a worker thread."""

    def __init__(
        self,
        write: Callable[[Sequence[Reader]], None],
        *,
        journal: UnsubscribeJournal,
        patience: float = PATIENCE,
    ) -> None:
        self._write = write
        self._journal = journal
        self._patience = patience
        self._batches = Batches(self._written, size=BATCH)

    async def unsubscribe(
        self,
        subscriber_id: int,
        list_slug: str,
        *,
        channel: UnsubscribeChannel = UnsubscribeChannel.ONE_CLICK,
    ) -> None:
        """Return once the reader's unsubscribe is committed or durably journaled."""
        reader = (subscriber_id, list_slug, channel)
        future = self._batches.submit(reader)
        # A failure after the POST was journaled and answered is read here, not left unread.
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            await asyncio.wait_for(asyncio.shield(future), self._patience)
        except (TimeoutError, DigestError) as exc:
            log.warning("unsubscribe of subscriber %d journaled: %s", subscriber_id, exc or "busy")
            await run_in_threadpool(self._journal.append, [reader])

    async def journal(self, readers: Sequence[Reader]) -> None:
        """Record unsubscribes the database could not take in time (durably: fsync'd); the
        next successful write, or the next delivery before it claims, applies them."""
        log.warning("%d unsubscribes journaled: the database is busy", len(readers))
        await run_in_threadpool(self._journal.append, readers)

    def apply_journal(self) -> None:
        """Write what an earlier process journaled (at start-up); a database still busy
        leaves it journaled for the next write or delivery claim."""
        try:
            applied = self._journal.apply(self._write)
        except DigestError as exc:
            log.warning("journaled unsubscribes left for later: %s", exc)
            return
        if applied:
            log.info("applied %d journaled unsubscribes", applied)

    def _written(self, readers: Sequence[Reader]) -> None:
        self._write(readers)
        # The database takes writes again: what waited in the journal goes in now.
        self._journal.apply(self._write)
