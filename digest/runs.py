"""Records of runs: what `digest run` did with each slot of a list's schedule, and each
`digest send` by hand.

Plain data, so the store can return it and the scheduler and `digest status` can read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class RunOutcome(StrEnum):
    """How one scheduled slot of a list ended."""

    RAN = "ran"  # the edition was made (or found) and its delivery started
    EMPTY = "nothing-new"  # nothing new to send and send_when_empty is off
    MISSED = "missed"  # the scheduler was down past the slot's grace period: nothing sent
    FAILED = "failed"  # the run raised; `detail` says why, the sweep retries what was queued
    # `digest send` by hand, its slot the moment it ran. Shown as the last run, never read by
    # the schedule's missed-run logic: a send by hand is not a slot of the schedule.
    BY_HAND = "by-hand"


@dataclass(frozen=True, slots=True)
class ListRun:
    """One slot of a list's schedule as the scheduler recorded it, or one send by hand."""

    list_slug: str
    slot: datetime
    outcome: RunOutcome
    recorded_at: datetime
    edition_id: int | None = None
    detail: str = ""
