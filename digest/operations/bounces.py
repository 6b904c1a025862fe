"""`digest bounces`: apply bounce reports and complaints to the subscribers they concern.

A hard bounce (no such mailbox) suppresses the subscriber on every list at once. A soft bounce
(mailbox full, retries ran out) counts; `soft_bounce_limit` in a row suppress, and a message that
got through in between starts the count again (EMAIL.md #15). A policy bounce (5.7.x: the
receiver refused *us*: authentication, reputation) never suppresses anyone, because the fix is
on our side, so it is reported loudly instead. Delayed and other informational reports change
nothing. A complaint (ARF) suppresses on every list too: see `digest.operations.complaints`.

With VERP, a report came back to an address that names the edition and subscriber; a genuine
token there wins over everything the report says, and a forged or altered one is ignored
with a warning, never attributed.

Each event is applied once, whatever reads it again: its key is the VERP token's delivery, or
the original Message-ID, with the recipient and kind, else where it was read from (the path
is made absolute, so `digest bounces ./Maildir` and `digest bounces /srv/Maildir` agree).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from digest.edition.tokens import read_message_id
from digest.edition.verp import find_verp_token, read_verp_token
from digest.intake.bounce_reports import BounceKind, BounceReport, RecipientStatus
from digest.intake.complaints import Complaint
from digest.intake.inbox import read_reports
from digest.operations.complaints import complaint_event, complaint_line
from digest.store import (
    AppliedBounce,
    BounceAction,
    BounceEffect,
    BounceEvent,
    ComplaintEffect,
    Store,
)

log = logging.getLogger(__name__)

_ACTIONS = {
    BounceKind.HARD: BounceAction.SUPPRESS,
    BounceKind.SOFT: BounceAction.COUNT,
    BounceKind.POLICY: BounceAction.NOTE,
}


@dataclass
class BounceSummary:
    """What one run did: counts of new events, and a line for each one that matters."""

    reports: int = 0  # messages that were bounce reports
    not_bounces: int = 0  # other mail in the box: replies, auto-replies
    hard: int = 0
    soft: int = 0
    suppressed_by_soft: int = 0  # soft bounces that reached the limit
    policy: int = 0
    informational: int = 0  # delayed, delivered, relayed
    unknown: int = 0  # hard or soft bounces for an address that is not a subscriber
    seen: int = 0  # events an earlier run already applied
    complaints: int = 0  # ARF reports read, counted apart from bounces
    complained: int = 0  # complaints that suppressed their subscriber
    unattributed: int = 0  # complaints that name no subscriber we know
    unreadable: list[str] = field(default_factory=list)
    forged: list[str] = field(default_factory=list)  # VERP addresses with a token not ours
    changes: list[str] = field(default_factory=list)
    policy_lines: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The one line a person reads at the end."""
        return (
            f"{self.reports} reports read: {self.hard} hard, {self.soft} soft "
            f"({self.suppressed_by_soft} reached the limit), {self.policy} policy, "
            f"{self.unknown} unknown recipients, {self.informational} informational, "
            f"{self.seen} already processed; {self.complaints} complaints "
            f"({self.complained} suppressed, {self.unattributed} unattributed); "
            f"{self.not_bounces} other messages, "
            f"{len(self.unreadable)} unreadable files"
        )


class _Unreadable(logging.Handler):
    """Collects what `read_reports` logs about a message it had to skip."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _unreadable_files() -> Iterator[list[str]]:
    # read_reports logs a file it cannot read and goes on; that warning is its only one, so
    # listening to it is how the summary counts them.
    logger = logging.getLogger("digest.intake.inbox")
    handler, level = _Unreadable(), logger.level
    if logger.getEffectiveLevel() > logging.WARNING:
        logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def verp_origin(
    addresses: Iterable[str], *, secrets: Iterable[bytes], summary: BounceSummary, where: str
) -> tuple[int, int] | None:
    """(edition id, subscriber id) from the first genuine VERP token among `addresses`; a
    token of VERP shape that is not ours is noted in `summary.forged` and passed over."""
    for address in addresses:
        token = find_verp_token(address)
        if token is None:
            continue
        found = read_verp_token(token, secrets=secrets)
        if found is not None:
            return found
        line = f"{address}: a VERP token this install did not make (forged or altered) [{where}]"
        log.warning("ignored %s", line)
        summary.forged.append(line)
    return None


def event_for(
    source: str,
    report: BounceReport,
    item: RecipientStatus,
    *,
    secrets: Iterable[bytes],
    verp: tuple[int, int] | None = None,
) -> BounceEvent:
    """One recipient's result as the store applies it, with the key that makes it once-only.

    `verp` is the (edition id, subscriber id) a genuine token the report came back to names;
    it wins over the Message-ID the report quotes.
    """
    recipient = item.recipient.lower()
    basis: tuple[str, ...] = (
        ("verp", str(verp[0]), str(verp[1]), recipient, item.kind)
        if verp
        else ("mid", report.original_message_id, recipient, item.kind)
        if report.original_message_id
        else ("src", source, recipient, item.kind, item.status)
    )
    event = BounceEvent(
        key=hashlib.sha256("\x00".join(basis).encode()).hexdigest(),
        source=source,
        recipient=item.recipient,
        kind=item.kind,
        status=item.status,
        action=_ACTIONS[item.kind],
    )
    if verp:
        return replace(event, edition_id=verp[0], subscriber_id=verp[1])
    origin = read_message_id(report.original_message_id, secrets=secrets)
    if origin is None:
        return event
    return replace(
        event,
        message_id=report.original_message_id,
        list_slug=origin[0],
        edition_date=origin[1],
        subscriber_id=origin[2],
    )


def _tally(
    summary: BounceSummary, item: RecipientStatus, applied: AppliedBounce, *, where: str
) -> None:
    who = applied.email or item.recipient or "(no recipient named)"
    message = (
        f" ({applied.list_slug} {applied.edition_date:%Y-%m-%d})" if applied.edition_date else ""
    )
    said = f"{item.status or 'no status'} {item.diagnostic}".strip()
    if applied.effect is BounceEffect.SEEN:
        summary.seen += 1
    elif item.kind is BounceKind.POLICY:
        summary.policy += 1
        summary.policy_lines.append(f"{who}{message}: {said} [{where}]")
    elif applied.effect is BounceEffect.UNKNOWN:
        summary.unknown += 1
        summary.changes.append(f"unknown recipient {who}: {item.kind} {said} [{where}]")
    elif item.kind is BounceKind.HARD:
        summary.hard += 1
        summary.changes.append(f"hard {who}{message}: {said}: suppressed on every list")
    else:
        summary.soft += 1
        in_a_row = f"{said}: soft bounce {applied.soft_bounces} in a row"
        if applied.effect is BounceEffect.SUPPRESSED:
            summary.suppressed_by_soft += 1
            summary.changes.append(f"soft {who}{message}: {in_a_row}: suppressed on every list")
        else:
            summary.changes.append(f"soft {who}{message}: {in_a_row}")


def _complaint(
    store: Store,
    summary: BounceSummary,
    source: str,
    complaint: Complaint,
    *,
    secrets: Mapping[int, bytes],
    now: datetime,
) -> None:
    summary.complaints += 1
    verp = verp_origin(complaint.senders, secrets=secrets.values(), summary=summary, where=source)
    event = complaint_event(source, complaint, verp=verp, secrets=secrets)
    applied = store.apply_complaint(event, now=now)
    if applied.effect is ComplaintEffect.SEEN:
        summary.seen += 1
        return
    summary.complained += applied.effect is ComplaintEffect.SUPPRESSED
    summary.unattributed += applied.effect is ComplaintEffect.UNATTRIBUTED
    summary.changes.append(complaint_line(complaint, applied, where=source))


def apply_reports(
    store: Store, path: Path, *, secrets: Mapping[int, bytes], soft_limit: int, now: datetime
) -> BounceSummary:
    """Read every report under `path` (maildir, mbox, folder of .eml files, one file) and apply
    each recipient's result, and each complaint, once. `secrets` are the unsubscribe keys by
    key id (current and retired) that made our VERP tokens, Message-IDs and unsubscribe
    tokens: a report carrying one names its subscriber (and edition)."""
    keys = list(secrets.values())
    summary = BounceSummary()
    with _unreadable_files() as unreadable:
        for source, report in read_reports(path.resolve()):
            if isinstance(report, Complaint):
                _complaint(store, summary, source, report, secrets=secrets, now=now)
                continue
            if report is None:
                summary.not_bounces += 1
                continue
            summary.reports += 1
            verp = verp_origin(report.returned_to, secrets=keys, summary=summary, where=source)
            for item in report.recipients:
                if item.kind is BounceKind.INFO:
                    summary.informational += 1
                    continue
                event = event_for(source, report, item, secrets=keys, verp=verp)
                applied = store.apply_bounce(event, soft_limit=soft_limit, now=now)
                _tally(summary, item, applied, where=source)
    summary.unreadable = list(unreadable)
    return summary
