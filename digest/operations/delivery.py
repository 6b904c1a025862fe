"""Delivering an edition: claim, personalise, send, record. The only writer of delivery rows.

The main thread claims batches from the ledger (committed before any SMTP traffic) and records
results in small groups after the servers replied; `connections` worker threads each hold one
SMTP session and send. A crash therefore leaves rows `sending` under a lease that a later run
reclaims: nobody is lost, and at most (connections + commit group) messages can go out twice.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from digest.edition.message import MessageTemplate, Recipient
from digest.errors import DigestError, TransportError
from digest.mail.pacing import Pacer
from digest.mail.replies import RetryPolicy, Verdict, judge, next_state
from digest.mail.transport import Reply, Stage
from digest.models import DeliveryState, Edition, EditionStatus, Subscriber
from digest.store import Claim, Outcome, Store

log = logging.getLogger(__name__)
# Deliveries that may still go out: while one is left, the edition is not done.
OPEN_STATES = (
    DeliveryState.QUEUED,
    DeliveryState.SENDING,
    DeliveryState.DEFERRED,
    DeliveryState.UNKNOWN,
)


class Transport(Protocol):
    """What delivery needs from an SMTP connection."""

    @property
    def is_open(self) -> bool: ...
    @property
    def sent_on_connection(self) -> int: ...
    def open(self) -> None: ...
    def close(self) -> None: ...
    def send(self, sender: str, recipient: str, data: bytes) -> Reply: ...


@dataclass
class DeliveryReport:
    """What one delivery run did, by ledger state, with the refusals worth showing."""

    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    paused: bool = False
    relay_down: str = ""
    due: int = 0
    stopped: bool = False

    @property
    def done(self) -> int:
        """How many results this run has recorded."""
        return sum(self.counts.values())

    def add(self, state: DeliveryState, problem: str | None = None) -> None:
        self.counts[state] = self.counts.get(state, 0) + 1
        if problem and len(self.problems) < 100:
            self.problems.append(problem)


@dataclass(frozen=True, slots=True)
class Watch:
    """How the caller follows a run: `stop` ends claiming (SIGTERM); `progress` sees each result."""

    stop: threading.Event = field(default_factory=threading.Event)
    progress: Callable[[DeliveryReport], None] | None = None


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
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True, slots=True)
class _Job:
    claim: Claim
    template: MessageTemplate


@dataclass(frozen=True, slots=True)
class _Result:
    claim: Claim
    reply: Reply


class _Worker(threading.Thread):
    """One SMTP session: takes claims, sends, hands back replies; reconnects as needed."""

    def __init__(
        self,
        *,
        connect: Callable[[], Transport],
        jobs: queue.Queue[_Job | None],
        results: queue.Queue[_Result],
        build: Callable[[_Job], bytes],
        envelope_from: str,
        pacer: Pacer,
        options: DeliveryOptions,
    ) -> None:
        super().__init__(daemon=True)
        self.connect, self.jobs, self.results, self.build = connect, jobs, results, build
        self.envelope_from, self.pacer, self.options = envelope_from, pacer, options
        self.transport: Transport | None = None
        self.opened_at = 0.0

    def _session(self) -> Transport:
        transport = self.transport
        expired = transport is not None and (
            transport.sent_on_connection >= self.options.messages_per_connection
            or time.monotonic() - self.opened_at >= self.options.seconds_per_connection
        )
        if transport is not None and (expired or not transport.is_open):
            transport.close()
            transport = None
        if transport is None:
            transport = self.connect()
            transport.open()
            self.transport, self.opened_at = transport, time.monotonic()
        return transport

    def run(self) -> None:
        try:
            while (job := self.jobs.get()) is not None:
                # Every job gets exactly one result, whatever happens: the run waits for it.
                self.results.put(_Result(job.claim, self._attempt(job)))
        finally:
            if self.transport is not None:
                self.transport.close()

    def _attempt(self, job: _Job) -> Reply:
        try:
            data = self.build(job)
        except DigestError as exc:  # e.g. a name that cannot go into a header
            return Reply(0, str(exc), Stage.PREPARE)
        try:
            transport = self._session()
        except TransportError as exc:
            self.transport = None
            return Reply(0, str(exc), Stage.CONNECT)
        self.pacer.wait()
        try:
            return transport.send(self.envelope_from, job.claim.subscriber.email, data)
        except Exception as exc:  # a bug must not hang the run; the message may have gone
            log.exception("unexpected error sending to %s", job.claim.subscriber.email)
            transport.close()
            return Reply(0, repr(exc), Stage.DOT)


def deliver(
    store: Store,
    edition: Edition,
    *,
    templates: Callable[[tuple[str, ...] | None], MessageTemplate | None],
    recipient: Callable[[Subscriber], Recipient],
    envelope_from: str,
    connect: Callable[[], Transport],
    clock: Callable[[], datetime],
    options: DeliveryOptions,
    watch: Watch | None = None,
    sign: Callable[[bytes], bytes] | None = None,
) -> DeliveryReport:
    """Send every due delivery of the edition over a pool of connections; returns what happened.

    `templates(sections)` gives the message for a subscriber's section choice (None: all).

    Raises TransportError before claiming anything if the relay cannot be reached at all.
    Setting `watch.stop` (SIGTERM) ends claiming; what is in flight finishes and is recorded,
    and claims not yet handed to a connection go back to the queue.
    """
    probe = connect()
    probe.open()  # unreachable: TransportError before anything is claimed
    probe.close()
    watch = watch or Watch()
    stop = watch.stop
    report = DeliveryReport(due=store.due_count(edition, now=clock()))
    store.set_edition_status(edition.id, EditionStatus.SENDING)
    jobs: queue.Queue[_Job | None] = queue.Queue()
    results: queue.Queue[_Result] = queue.Queue()

    def build(job: _Job) -> bytes:
        data = job.template.personalise(recipient(job.claim.subscriber), date=clock())
        return sign(data) if sign else data  # DKIM goes last, over the exact bytes sent

    workers = _start_workers(
        connect=connect,
        jobs=jobs,
        results=results,
        build=build,
        envelope_from=envelope_from,
        options=options,
    )
    ledger = _Ledger(
        store=store,
        edition=edition,
        options=options,
        report=report,
        clock=clock,
        progress=watch.progress,
    )
    # At most this many messages are handed out and not yet committed as results: the most a
    # crash can send twice.
    window = options.commit_group + options.connections
    handed = 0

    def halted() -> bool:
        return stop.is_set() or report.paused or bool(report.relay_down)

    try:
        while not halted():
            claims = store.claim(
                edition,
                owner=options.owner,
                limit=options.batch_size,
                lease=options.lease,
                now=clock(),
            )
            if not claims:
                break
            for index, claim in enumerate(claims):
                while handed - ledger.committed >= window and not halted():
                    ledger.drain(results, block=True, until=ledger.done + 1)
                if halted():
                    store.release(claims[index:], owner=options.owner, now=clock())
                    break
                template = templates(claim.sections)
                handed += 1
                if template is None:  # their sections have nothing today
                    ledger.skip(claim, "no article in the subscriber's chosen sections")
                    continue
                jobs.put(_Job(claim, template))
                ledger.drain(results, block=False)
        while ledger.done < handed and not halted():  # let the last claims finish
            ledger.drain(results, block=True, until=ledger.done + 1)
    finally:
        # Claims not yet picked up by a connection go back to the queue; the rest finish.
        unsent = _take_all(jobs)
        store.release(unsent, owner=options.owner, now=clock())
        handed -= len(unsent)
        for _ in workers:
            jobs.put(None)
        ledger.drain(results, block=True, until=handed)
        for worker in workers:
            worker.join()
        ledger.flush()
    report.stopped = stop.is_set()
    if report.paused:
        store.set_edition_status(edition.id, EditionStatus.PAUSED)
    elif not any(store.delivery_counts(edition.id).get(state) for state in OPEN_STATES):
        store.set_edition_status(edition.id, EditionStatus.DONE)
    return report


def _start_workers(
    *,
    connect: Callable[[], Transport],
    jobs: queue.Queue[_Job | None],
    results: queue.Queue[_Result],
    build: Callable[[_Job], bytes],
    envelope_from: str,
    options: DeliveryOptions,
) -> list[_Worker]:
    """One thread per connection, sharing one pacer so the rate limit holds for the run."""
    pacer = Pacer(
        rate=options.rate_per_second,
        hourly_cap=options.hourly_cap,
        clock=time.monotonic,
        sleep=time.sleep,
    )
    workers = [
        _Worker(
            connect=connect,
            jobs=jobs,
            results=results,
            build=build,
            envelope_from=envelope_from,
            pacer=pacer,
            options=options,
        )
        for _ in range(options.connections)
    ]
    for worker in workers:
        worker.start()
    return workers


def _take_all(jobs: queue.Queue[_Job | None]) -> list[Claim]:
    """Empty the job queue, returning the claims no connection picked up."""
    taken: list[Claim] = []
    while True:
        try:
            item = jobs.get_nowait()
        except queue.Empty:
            return taken
        if item is not None:
            taken.append(item.claim)


class _Ledger:
    """Turns replies into ledger outcomes, written in groups; watches for a pause."""

    def __init__(
        self,
        *,
        store: Store,
        edition: Edition,
        options: DeliveryOptions,
        report: DeliveryReport,
        clock: Callable[[], datetime],
        progress: Callable[[DeliveryReport], None] | None,
    ) -> None:
        self.progress = progress
        self.store, self.edition, self.options, self.report, self.clock = (
            store,
            edition,
            options,
            report,
            clock,
        )
        self.pending: list[Outcome] = []
        self.done = 0
        self.committed = 0
        self.failures_in_a_row = 0

    def drain(self, results: queue.Queue[_Result], *, block: bool, until: int = 0) -> None:
        while True:
            if block and self.done < until:
                item = results.get()
            else:
                try:
                    item = results.get_nowait()
                except queue.Empty:
                    return
            self.done += 1
            self._judge(item)

    def _judge(self, item: _Result) -> None:
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
            self.store.mark_bounced(claim.subscriber.id, self.edition.list_slug, now=now)
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
        self.pending.append(
            Outcome(
                edition_id=claim.edition_id,
                subscriber_id=claim.subscriber.id,
                state=state,
                reply=str(reply),
                next_attempt_at=retry_at,
            )
        )
        if len(self.pending) >= self.options.commit_group:
            self.flush()

    def skip(self, claim: Claim, reason: str) -> None:
        """Record a claim that needs no message."""
        self.done += 1
        self.report.add(DeliveryState.SKIPPED)
        self.pending.append(
            Outcome(
                edition_id=claim.edition_id,
                subscriber_id=claim.subscriber.id,
                state=DeliveryState.SKIPPED,
                reply=reason,
            )
        )
        if len(self.pending) >= self.options.commit_group:
            self.flush()

    def flush(self) -> None:
        self.store.record(self.pending, owner=self.options.owner, now=self.clock())
        self.committed += len(self.pending)
        self.pending = []
