"""Delivering an edition: claim, personalise, send, record. The only writer of delivery rows.

Each claim is committed before any SMTP traffic and each result after the server's reply, so
a crash leaves rows `sending` with a lease that a later run reclaims: nobody is lost, and at
most the messages of one commit group can go out twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from digest.errors import TransportError
from digest.message import MessageTemplate, Recipient
from digest.models import DeliveryState, Edition, EditionStatus, Subscriber
from digest.replies import RetryPolicy, Verdict, judge, next_state
from digest.store import Claim, Outcome, Store
from digest.transport import Reply

log = logging.getLogger(__name__)


class Transport(Protocol):
    """What delivery needs from an SMTP connection."""

    @property
    def is_open(self) -> bool: ...
    def open(self) -> None: ...
    def close(self) -> None: ...
    def send(self, sender: str, recipient: str, data: bytes) -> Reply: ...


@dataclass
class DeliveryReport:
    """What one delivery run did, by ledger state, with the refusals worth showing."""

    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, state: DeliveryState, problem: str | None = None) -> None:
        self.counts[state] = self.counts.get(state, 0) + 1
        if problem:
            self.problems.append(problem)


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """How a run claims and records."""

    owner: str
    batch_size: int = 200
    commit_group: int = 20
    lease: timedelta = timedelta(minutes=10)
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def deliver(
    store: Store,
    edition: Edition,
    *,
    template: MessageTemplate,
    recipient: Callable[[Subscriber], Recipient],
    envelope_from: str,
    transport: Transport,
    clock: Callable[[], datetime],
    options: DeliveryOptions,
) -> DeliveryReport:
    """Send every due delivery of the edition over `transport`; returns what happened."""
    report = DeliveryReport()
    if not transport.is_open:
        transport.open()  # unreachable: TransportError before anything is claimed
    store.set_edition_status(edition.id, EditionStatus.SENDING)
    while claims := store.claim(
        edition, owner=options.owner, limit=options.batch_size, lease=options.lease, now=clock()
    ):
        pending: list[Outcome] = []
        for index, claim in enumerate(claims):
            try:
                if not transport.is_open:
                    transport.open()
            except TransportError as exc:
                # The relay went away mid-run: what was claimed waits for the next run.
                store.record(pending, owner=options.owner, now=clock())
                store.release(claims[index:], owner=options.owner, now=clock())
                raise exc
            pending.append(
                _send_one(
                    claim,
                    edition=edition,
                    template=template,
                    recipient=recipient,
                    envelope_from=envelope_from,
                    transport=transport,
                    clock=clock,
                    options=options,
                    report=report,
                    store=store,
                )
            )
            if len(pending) >= options.commit_group:
                store.record(pending, owner=options.owner, now=clock())
                pending = []
        store.record(pending, owner=options.owner, now=clock())
    remaining = store.delivery_counts(edition.id)
    if not any(
        remaining.get(state)
        for state in (
            DeliveryState.QUEUED,
            DeliveryState.SENDING,
            DeliveryState.DEFERRED,
            DeliveryState.UNKNOWN,
        )
    ):
        store.set_edition_status(edition.id, EditionStatus.DONE)
    return report


def _send_one(
    claim: Claim,
    *,
    edition: Edition,
    template: MessageTemplate,
    recipient: Callable[[Subscriber], Recipient],
    envelope_from: str,
    transport: Transport,
    clock: Callable[[], datetime],
    options: DeliveryOptions,
    report: DeliveryReport,
    store: Store,
) -> Outcome:
    now = clock()
    data = template.personalise(recipient(claim.subscriber), date=now)
    reply = transport.send(envelope_from, claim.subscriber.email, data)
    verdict = judge(reply)
    state, retry_at = next_state(
        verdict,
        attempts=claim.attempts,
        queued_at=edition.created_at,
        now=now,
        policy=options.retry,
    )
    problem = None
    if verdict != Verdict.DELIVERED:
        problem = f"{claim.subscriber.email}: {reply} ({verdict})"
        log.warning("delivery to %s: %s -> %s", claim.subscriber.email, reply, state)
    if verdict == Verdict.BOUNCE:
        store.mark_bounced(claim.subscriber.id, edition.list_slug, now=now)
    report.add(state, problem)
    return Outcome(
        edition_id=claim.edition_id,
        subscriber_id=claim.subscriber.id,
        state=state,
        reply=str(reply),
        next_attempt_at=retry_at,
    )
