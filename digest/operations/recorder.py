"""A delivery run's terms and tally: its options, its report, and the recorder that turns
the servers' replies into ledger outcomes, written in small groups.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from digest.config import DeliverySettings
from digest.mail.replies import RetryPolicy, Verdict, judge, next_state
from digest.mail.transport import Reply, Stage
from digest.models import DeliveryState, Edition
from digest.operations.ledger import Ledger
from digest.store import Claim, Outcome

# Delivery logs under one name, whichever of its modules writes: operators filter on it.
log = logging.getLogger("digest.operations.delivery")
_TICK = 0.1  # how often a wait for results looks whether it should give up


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """How a run claims, paces, and records."""

    owner: str
    connections: int = 4
    messages_per_connection: int = 100
    seconds_per_connection: float = 300.0
    rate_per_second: float = 0.0
    hourly_cap: int = 0
    batch_size: int = 500
    commit_group: int = 50
    lease: timedelta = timedelta(minutes=10)
    pause_after_failures: int = 50
    breaker_after: int = 5
    stop_grace: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_settings(cls, settings: DeliverySettings, *, owner: str) -> DeliveryOptions:
        """The options the `[delivery]` section asks for, for a run by `owner`."""
        return cls(
            owner=owner,
            connections=settings.connections,
            messages_per_connection=settings.messages_per_connection,
            seconds_per_connection=settings.seconds_per_connection,
            rate_per_second=settings.rate_per_second,
            hourly_cap=settings.hourly_cap,
            batch_size=settings.batch_size,
            commit_group=settings.commit_group,
            lease=timedelta(seconds=settings.lease_seconds),
            pause_after_failures=settings.pause_after_failures,
            breaker_after=settings.breaker_after,
            stop_grace=settings.stop_grace,
            retry=RetryPolicy(
                first=timedelta(seconds=settings.retry_first_seconds),
                maximum=timedelta(seconds=settings.retry_max_seconds),
                lifetime=timedelta(hours=settings.lifetime_hours),
            ),
        )


@dataclass
class DeliveryReport:
    """What one delivery run did, by ledger state, with the refusals worth showing."""

    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    paused: bool = False  # by the run itself, after too many permanent failures
    paused_by_editor: bool = False  # someone paused the edition while it was sending
    relay_down: str = ""
    due: int = 0
    stopped: bool = False
    queued: int = 0  # rows this run added to the ledger (queueing runs beside delivery)

    @property
    def done(self) -> int:
        """How many results this run has recorded."""
        return sum(self.counts.values())

    def add(self, state: DeliveryState, problem: str | None = None) -> None:
        """Count one result; keep its problem line while there are few enough to show."""
        self.counts[state] = self.counts.get(state, 0) + 1
        if problem and len(self.problems) < 100:
            self.problems.append(problem)


@dataclass(frozen=True, slots=True)
class Watch:
    """How the caller follows a run: `stop` ends claiming (SIGTERM); `progress` sees the report
    once before the first claim (nothing done yet, the total known) and after each result."""

    stop: threading.Event = field(default_factory=threading.Event)
    progress: Callable[[DeliveryReport], None] | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """A connection's answer for one claim."""

    claim: Claim
    reply: Reply


class Recorder:
    """Turns replies into ledger outcomes, written in groups; watches for a pause."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        edition: Edition,
        options: DeliveryOptions,
        report: DeliveryReport,
        clock: Callable[[], datetime],
        progress: Callable[[DeliveryReport], None] | None,
    ) -> None:
        self.ledger, self.edition, self.options = ledger, edition, options
        self.report, self.clock, self.progress = report, clock, progress
        self.pending: list[Outcome] = []
        self.done = 0
        self.committed = 0
        self.failures_in_a_row = 0
        if progress:
            progress(report)  # the run's total, before its first result

    def drain(
        self,
        results: queue.SimpleQueue[Result],
        *,
        block: bool,
        until: int = 0,
        give_up: Callable[[], bool] | None = None,
    ) -> None:
        """Judge the results that have come; with `block`, wait until `until` are done, or
        until `give_up()` says to stop waiting (a stop, a grace period run out)."""
        while True:
            if block and self.done < until:
                try:
                    item = results.get(timeout=_TICK if give_up else None)
                except queue.Empty:
                    if give_up is not None and give_up():
                        return
                    continue
            else:
                try:
                    item = results.get_nowait()
                except queue.Empty:
                    return
            self.done += 1
            self._judge(item)

    def _judge(self, item: Result) -> None:
        claim, reply = item.claim, item.reply
        now = self.clock()
        verdict = judge(reply)
        state, retry_at = next_state(
            verdict,
            attempts=claim.attempts,
            queued_at=self.edition.created_at,
            now=now,
            policy=self.options.retry,
        )
        problem = None
        if verdict != Verdict.DELIVERED:
            problem = f"{claim.subscriber.email}: {reply} ({verdict})"
            level = logging.ERROR if verdict == Verdict.POLICY else logging.WARNING
            log.log(level, "delivery to %s: %s -> %s", claim.subscriber.email, reply, state)
        if reply.stage == Stage.CONNECT:
            self.report.relay_down = str(reply)
        if verdict == Verdict.BOUNCE:
            self.ledger.mark_bounced(claim.subscriber.id, now=now)
        self.failures_in_a_row = self.failures_in_a_row + 1 if state == DeliveryState.FAILED else 0
        if self.failures_in_a_row >= self.options.pause_after_failures and not self.report.paused:
            self.report.paused = True
            log.error(
                "edition %s paused after %s permanent failures in a row",
                self.edition.id,
                self.failures_in_a_row,
            )
        self.report.add(state, problem)
        if self.progress:
            self.progress(self.report)
        self._keep(
            Outcome(
                edition_id=claim.edition_id,
                subscriber_id=claim.subscriber.id,
                state=state,
                reply=str(reply),
                next_attempt_at=retry_at,
            )
        )

    def skip(self, claim: Claim, reason: str) -> None:
        """Record a claim that needs no message."""
        self.done += 1
        self.report.add(DeliveryState.SKIPPED)
        self._keep(
            Outcome(
                edition_id=claim.edition_id,
                subscriber_id=claim.subscriber.id,
                state=DeliveryState.SKIPPED,
                reply=reason,
            )
        )

    def _keep(self, outcome: Outcome) -> None:
        self.pending.append(outcome)
        if len(self.pending) >= self.options.commit_group:
            self.flush()

    def flush(self) -> None:
        """Write the outcomes kept so far in one go."""
        self.ledger.record(self.pending, owner=self.options.owner, now=self.clock())
        self.committed += len(self.pending)
        self.pending = []
