"""The queueing beside delivery tells the claiming loop about every chunk, even the last one
of a short list committed just before the queueing ended."""

from __future__ import annotations

import threading
from collections.abc import Callable

from digest.operations.supply import Supply, start


def one_chunk(committed: Callable[[int], None]) -> int:
    committed(24)  # a short list: one chunk, and the queueing is over
    return 24


def test_a_chunk_committed_after_an_empty_claim_is_claimed_though_the_queueing_ended() -> None:
    supply = Supply()
    # The claim found nothing; before the loop asks for more, the only chunk is committed
    # and the queueing ends.
    start(supply, one_chunk).join()
    assert supply.wait_for_more()  # claim again: those rows are there
    assert not supply.wait_for_more()  # that claim took them; nothing more will come
    assert supply.complete and supply.queued == 24


def test_waiting_returns_when_the_next_chunk_is_committed() -> None:
    supply = Supply()
    go_on, answered = threading.Event(), []

    def two_chunks(committed: Callable[[int], None]) -> int:
        committed(500)
        go_on.wait(10)
        committed(600)
        return 600

    queueing = start(supply, two_chunks)
    assert supply.wait_for_more()  # the first chunk
    waiter = threading.Thread(target=lambda: answered.append(supply.wait_for_more()))
    waiter.start()
    go_on.set()
    waiter.join(10)
    queueing.join(10)
    assert answered == [True]
    # Then, the queueing over, at most one more claim before the loop is told to stop.
    assert not supply.wait_for_more() or not supply.wait_for_more()
