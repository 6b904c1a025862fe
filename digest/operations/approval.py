"""Approval: a list with `approval = "required"` has its edition made at the scheduled run,
and nothing goes out until an editor approves it or its deadline decides.

Each waiting edition gets exactly one verdict (approved, sent at the deadline, skipped), the
first written: an editor's Approve and the deadline may race, and the loser changes nothing.
Approving or sending at the deadline queues the subscribers; the sweep of `digest run` (or
the command that approved) delivers them. A skipped edition is a missed edition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from digest.config import ListSettings
from digest.edition.timing import approval_deadline_at, next_slot
from digest.errors import InvalidInputError, NotFoundError
from digest.models import (
    Approval,
    Edition,
    EditionStatus,
    EditionVerdict,
    OnDeadline,
    Verdict,
)
from digest.operations.editions import edition_date
from digest.operations.publisher import Publisher
from digest.operations.status import shown_status
from digest.store import Store

DEADLINE = "deadline"  # who decided an edition that no editor approved in time


class ApprovalState(StrEnum):
    """Where a list's edition of the day stands, as the desk shows it."""

    AUTOMATIC = "automatic"  # approval = "auto": it goes at the schedule
    NOT_MADE = "not made yet"  # the scheduled run has not made it
    WAITING = "waiting"
    APPROVED = "approved"  # approved (or sent at the deadline), delivery under way
    SENT = "sent"
    MISSED = "missed"  # skipped at the deadline


@dataclass(frozen=True, slots=True)
class ApprovalView:
    """A list's approval mode and its newest edition's state, for the desk."""

    mode: Approval
    state: ApprovalState
    edition: Edition | None = None
    verdict: EditionVerdict | None = None
    deadline: datetime | None = None  # in the list's zone


def _recent(publisher: Publisher, now: datetime) -> datetime:
    return now - timedelta(hours=publisher.settings.scheduler.recent_hours)


def approval_view(store: Store, mailing_list: ListSettings, *, now: datetime) -> ApprovalView:
    """The list's mode and where today's edition stands."""
    if mailing_list.approval is Approval.AUTO:
        return ApprovalView(mode=Approval.AUTO, state=ApprovalState.AUTOMATIC)
    edition = store.edition_for(mailing_list.slug, edition_date(mailing_list, now))
    if edition is None:
        return ApprovalView(mode=Approval.REQUIRED, state=ApprovalState.NOT_MADE)
    deadline = approval_deadline_at(mailing_list, made=edition.created_at)
    local = deadline.astimezone(mailing_list.zone) if deadline else None
    verdict = store.verdict_for(edition.id)
    if verdict is None:
        state = ApprovalState.WAITING
    elif verdict.verdict is Verdict.SKIPPED:
        state = ApprovalState.MISSED
    else:
        shown = shown_status(edition.status, store.delivery_counts(edition.id))
        state = ApprovalState.SENT if shown is EditionStatus.DONE else ApprovalState.APPROVED
    return ApprovalView(Approval.REQUIRED, state, edition, verdict, local)


def approve(publisher: Publisher, list_slug: str, *, editor: str, now: datetime) -> Edition:
    """Approve the list's edition that waits, and queue its subscribers; returns it.

    Raises InvalidInputError for a list that needs no approval, NotFoundError when no edition
    waits (not made yet, or already decided).
    """
    mailing_list = publisher.settings.list(list_slug)
    if mailing_list.approval is Approval.AUTO:
        raise InvalidInputError(f'list {list_slug} sends without approval (approval = "auto")')
    # The list's newest edition only: an older one left undecided is not sent days late.
    latest = publisher.store.latest_edition(list_slug)
    waiting = (
        publisher.store.undecided_editions(list_slug, since=latest.created_at) if latest else []
    )
    if not waiting:
        upcoming = next_slot(mailing_list, now)
        when = (
            upcoming.astimezone(mailing_list.zone).strftime("%Y-%m-%d %H:%M %Z")
            if upcoming
            else "never"
        )
        raise NotFoundError(
            f"no edition of {list_slug} is waiting for approval; "
            f"the scheduled run makes the next one (next run {when})"
        )
    edition = waiting[-1]
    if not publisher.store.record_verdict(edition.id, Verdict.APPROVED, decided_by=editor, now=now):
        raise NotFoundError(f"edition #{edition.id} of {list_slug} was decided meanwhile")
    publisher.queue(edition, now=now)
    return edition


@dataclass(frozen=True, slots=True)
class Settled:
    """An edition its deadline decided."""

    edition: Edition
    verdict: Verdict
    deadline: datetime


def settle_deadlines(publisher: Publisher, *, now: datetime) -> list[Settled]:
    """Decide every waiting edition whose approval deadline has passed: queue it
    (on_deadline = "send") or skip it as a missed edition ("skip")."""
    settled: list[Settled] = []
    for item in publisher.settings.lists:
        if item.approval is Approval.AUTO or item.approval_deadline is None:
            continue
        for edition in publisher.store.undecided_editions(item.slug, since=_recent(publisher, now)):
            deadline = approval_deadline_at(item, made=edition.created_at)
            if deadline is None or now < deadline:
                continue
            sends = item.on_deadline is OnDeadline.SEND
            verdict = Verdict.DEADLINE_SENT if sends else Verdict.SKIPPED
            if not publisher.store.record_verdict(
                edition.id, verdict, decided_by=DEADLINE, now=now
            ):
                continue  # an editor approved it at the last moment
            if sends:
                publisher.queue(edition, now=now)
            settled.append(Settled(edition, verdict, deadline))
    return settled
