"""What a delivery waits on besides the ledger: the queueing still under way beside it, and
the unsubscribes journaled while the database was busy.

Queueing a long list runs in a thread of its own, chunk by chunk, while delivery claims what
is already queued, so the first message leaves after the first chunk, not after the whole
list. Delivery ends only once the queueing has ended and nothing is left to claim, and the
edition is done only if the queueing finished: a run killed half-way leaves it `sending`, and
the next `digest send` or sweep queues the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from digest.operations.journal import Reader, UnsubscribeJournal


class QueueingStopped(Exception):
    """Raised inside the queueing thread to end it between chunks (the run is stopping)."""


class Supply:
    """The queueing beside one delivery run, and the journal it applies before each claim."""

    def __init__(
        self,
        *,
        journal: UnsubscribeJournal | None = None,
        unsubscribe: Callable[[Sequence[Reader]], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self._journal, self._unsubscribe = journal, unsubscribe
        self._stop = stop or threading.Event()
        self._more = threading.Event()
        self._ended = threading.Event()
        self.queued = 0
        self.complete = False  # the queueing ran to the end of the list
        self.error: BaseException | None = None

    def run(self, queue: Callable[[Callable[[int], None]], int]) -> None:
        """Run `queue(committed)` (in its own thread); whatever happens, delivery is told."""
        try:
            self.queued = queue(self._committed)
            self.complete = True
        except QueueingStopped:
            pass
        except BaseException as exc:  # read by the caller once delivery ended
            self.error = exc
        finally:
            self._ended.set()
            self._more.set()

    def _committed(self, added: int) -> None:
        self.queued = added
        self._more.set()
        if self._stop.is_set():
            raise QueueingStopped

    def before_claim(self) -> None:
        """Apply journaled unsubscribes, so no claim goes to a reader who has left."""
        if self._journal is not None and self._unsubscribe is not None:
            self._journal.apply(self._unsubscribe)

    def wait_for_more(self) -> bool:
        """After a claim found nothing: wait for the next chunk and return True, or return
        False once the queueing has ended and committed nothing since the last call.

        A chunk committed between that claim and this call (the queueing may have ended too,
        on a short list) returns True at once: the claim had not seen it."""
        if self._ended.is_set() and not self._more.is_set():
            return False
        self._more.wait()
        # Cleared before the next claim: a chunk committed after this line sets it again.
        self._more.clear()
        return True


def start(supply: Supply, queue: Callable[[Callable[[int], None]], int]) -> threading.Thread:
    """Start `supply.run(queue)` in a thread of its own; the caller joins it."""
    thread = threading.Thread(target=supply.run, args=(queue,), name="queueing", daemon=True)
    thread.start()
    return thread
