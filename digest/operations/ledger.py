"""What delivery needs from the durable ledger, and who may reclaim a dead sender's claims.

Delivery owns this Protocol: `Store` satisfies it, and so can anything a test puts in its place.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from digest.models import DeliveryState, Edition, EditionStatus
from digest.store import Claim, Outcome, Store

# Deliveries that may still go out: while one is left, the edition is not done.
OPEN_STATES = (
    DeliveryState.QUEUED,
    DeliveryState.SENDING,
    DeliveryState.DEFERRED,
    DeliveryState.UNKNOWN,
)


class Ledger(Protocol):
    """The delivery rows of an edition: claimed under a lease, then recorded or released."""

    def due_count(self, edition: Edition, *, now: datetime) -> int: ...
    def claim(
        self, edition: Edition, *, owner: str, limit: int, lease: timedelta, now: datetime
    ) -> list[Claim]: ...
    def record(self, outcomes: Sequence[Outcome], *, owner: str, now: datetime) -> None: ...
    def release(self, claims: Sequence[Claim], *, owner: str, now: datetime) -> None: ...
    def sending_owners(self, edition_id: int) -> set[str]: ...
    def expire_leases(self, edition_id: int, owner: str, *, now: datetime) -> int: ...
    def delivery_counts(self, edition_id: int) -> dict[str, int]: ...
    def set_edition_status(self, edition_id: int, status: EditionStatus) -> None: ...
    def edition_status(self, edition_id: int) -> EditionStatus: ...
    def mark_bounced(self, subscriber_id: int, *, now: datetime) -> None: ...


def owner_name() -> str:
    """Who holds a claim: host and process, so a stale lease can be traced."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _is_dead_here(owner: str) -> bool:
    """True for a claim owner that ran on this host and whose process is gone."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def reclaim_from_the_dead(ledger: Ledger, edition_id: int, *, now: datetime) -> None:
    """A sender killed on this machine need not wait out its leases: its claims are due now."""
    for owner in ledger.sending_owners(edition_id):
        if _is_dead_here(owner):
            ledger.expire_leases(edition_id, owner, now=now)


def reclaim_recent_from_the_dead(store: Store, *, since: datetime, now: datetime) -> None:
    """The same for every edition made since `since`, before a sweep looks for due work: a
    sender killed after the last queued row was claimed leaves nothing due that would start
    a delivery (and with it `reclaim_from_the_dead`), so its claims would wait out the lease."""
    for edition_id, owner in store.claim_holders(since=since):
        if _is_dead_here(owner):
            store.expire_leases(edition_id, owner, now=now)
