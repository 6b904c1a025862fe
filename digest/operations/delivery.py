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
from datetime import datetime

from digest.edition.message import MessageTemplate, Recipient
from digest.errors import TransportError
from digest.mail.dkim import DkimSigner
from digest.models import Edition, EditionStatus
from digest.operations.ledger import OPEN_STATES, Ledger, reclaim_from_the_dead
from digest.operations.recorder import DeliveryOptions, DeliveryReport, Recorder, Result, Watch
from digest.operations.sessions import Breaker, Job, Transport, Worker, start_workers, take_all
from digest.operations.supply import Supply
from digest.store import Claim

log = logging.getLogger(__name__)
_TICK = 0.1  # how often the wait for the first session looks whether to stop

__all__ = [
    "OPEN_STATES",
    "DeliveryOptions",
    "DeliveryReport",
    "Ledger",
    "Transport",
    "Watch",
    "deliver",
]


def deliver(
    ledger: Ledger,
    edition: Edition,
    *,
    templates: Callable[[tuple[str, ...] | None, str], MessageTemplate | None],
    recipient: Callable[[Claim], Recipient],
    envelope_from: Callable[[Claim], str],
    connect: Callable[[], Transport],
    clock: Callable[[], datetime],
    options: DeliveryOptions,
    watch: Watch | None = None,
    signer: DkimSigner | None = None,
    supply: Supply | None = None,
    due: int | None = None,
) -> DeliveryReport:
    """Send every due delivery of the edition over a pool of connections; returns what happened.

    `templates(sections, locale)` gives the message for a subscriber's section choice (None:
    all) in their language; `recipient(claim)` the per-message values of a claimed delivery;
    `envelope_from(claim)` the envelope sender of that delivery (with
    VERP, its own).

    Raises TransportError before claiming anything if the relay cannot be reached at all (and
    anything is due).
    Setting `watch.stop` (SIGTERM) ends claiming; what is in flight gets `stop_grace` seconds
    to finish, then its sessions are cut and those rows recorded as their stage left them
    (after the final ".": unknown, resent under the same Message-ID); claims not yet handed
    to a connection go back to the queue. With a `supply`, claiming goes on while its
    queueing adds rows, and its journaled unsubscribes are applied before each claim; `due`
    is then what the run is expected to send (counted before the queueing started), else the
    rows due now.
    """
    reclaim_from_the_dead(ledger, edition.id, now=clock())
    watch = watch or Watch()
    stop = watch.stop
    report = DeliveryReport(due=ledger.due_count(edition, now=clock()) if due is None else due)
    # Nothing due needs no relay: a `resume` or `retry` with nothing to send says so even
    # while the relay is down.
    if report.due and not _probe(connect, stop):
        report.stopped = True
        return report
    ledger.set_edition_status(edition.id, EditionStatus.SENDING)
    jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
    results: queue.SimpleQueue[Result] = queue.SimpleQueue()

    breaker = Breaker(options.breaker_after)
    workers = start_workers(
        connect=connect,
        jobs=jobs,
        results=results,
        build=_builder(recipient, clock, signer),
        breaker=breaker,
        options=options,
    )
    recorder = Recorder(
        ledger=ledger,
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
        if breaker.tripped.is_set() and not report.relay_down:
            report.relay_down = breaker.reason
            log.error("edition %s: %s", edition.id, breaker.reason)
        return stop.is_set() or report.paused or bool(report.relay_down)

    try:
        while not halted():
            if not _may_claim(ledger, edition, report, supply):
                break
            claims = ledger.claim(
                edition,
                owner=options.owner,
                limit=options.batch_size,
                lease=options.lease,
                now=clock(),
            )
            if not claims:
                if supply is not None and supply.wait_for_more():
                    continue
                break
            for index, claim in enumerate(claims):
                while handed - recorder.committed >= window and not halted():
                    recorder.drain(results, block=True, until=recorder.done + 1, give_up=halted)
                if halted():
                    ledger.release(claims[index:], owner=options.owner, now=clock())
                    break
                template = templates(claim.sections, claim.subscriber.locale)
                handed += 1
                if template is None:  # their sections have nothing today
                    recorder.skip(claim, "no article in the subscriber's chosen sections")
                    continue
                jobs.put(Job(claim, template, envelope_from(claim)))
                recorder.drain(results, block=False)
        while recorder.done < handed and not halted():  # let the last claims finish
            recorder.drain(results, block=True, until=recorder.done + 1, give_up=halted)
    finally:
        # Claims not yet picked up by a connection go back to the queue; the rest finish.
        unsent = take_all(jobs)
        ledger.release(unsent, owner=options.owner, now=clock())
        handed -= len(unsent)
        _wind_down(
            workers,
            jobs,
            results,
            recorder,
            handed=handed,
            grace=options.stop_grace if stop.is_set() else None,
        )
    report.stopped = stop.is_set()
    _settle(ledger, edition, report, queued_all=supply is None or supply.complete)
    return report


def _may_claim(
    ledger: Ledger, edition: Edition, report: DeliveryReport, supply: Supply | None
) -> bool:
    """Before each batch: a pause from the desk is seen here (at most one batch more goes out
    after it), and the unsubscribes the database could not take at once are applied."""
    if ledger.edition_status(edition.id) == EditionStatus.PAUSED:
        report.paused_by_editor = True
        return False
    if supply is not None:
        supply.before_claim()
    return True


def _builder(
    recipient: Callable[[Claim], Recipient],
    clock: Callable[[], datetime],
    signer: DkimSigner | None,
) -> Callable[[Job], bytes]:
    """How a connection makes the bytes of one job's message."""

    def build(job: Job) -> bytes:
        who = recipient(job.claim)
        if signer is None:
            return job.template.personalise(who, date=clock())
        # DKIM goes last, over the exact bytes sent; the fixed segments hash once per variant.
        head, holes = job.template.personal_parts(who, date=clock())
        template = job.template
        return signer.sign_parts(head, template.fixed_head, template.segments, holes)

    return build


def _probe(connect: Callable[[], Transport], stop: threading.Event) -> bool:
    """Open and close one session before anything is claimed; False if stopped meanwhile.

    Raises TransportError if the relay cannot be reached. The session opens on a thread of
    its own so that a stop cuts a set-up the relay trickles at once: nothing is in flight yet.
    """
    probe = connect()
    failed: list[TransportError] = []

    def attempt() -> None:
        try:
            probe.open()
            probe.close()
        except TransportError as exc:  # raised again on the caller's thread
            failed.append(exc)

    opening = threading.Thread(target=attempt, name="probe", daemon=True)
    opening.start()
    while opening.is_alive() and not stop.is_set():
        opening.join(_TICK)
    if opening.is_alive():
        probe.abort("stopped during the first session's set-up")
        opening.join()
    if stop.is_set():
        return False
    if failed:
        raise failed[0]
    return True


def _wind_down(
    workers: list[Worker],
    jobs: queue.SimpleQueue[Job | None],
    results: queue.SimpleQueue[Result],
    recorder: Recorder,
    *,
    handed: int,
    grace: float | None,
) -> None:
    """Let the transactions in flight end and record them all. On a stop they get `grace`
    seconds; then their sessions are cut, so a stalled relay cannot hold the process."""
    for _ in workers:
        jobs.put(None)
    if grace is not None:
        grace_ends = time.monotonic() + grace
        recorder.drain(
            results, block=True, until=handed, give_up=lambda: time.monotonic() >= grace_ends
        )
        for worker in workers:
            worker.abort(f"stopped: still in flight after {grace:g} s (delivery.stop_grace)")
    for worker in workers:
        worker.join()
    # What reached a connection after the breaker tripped was never tried: back to the queue.
    untried = [claim for worker in workers for claim in worker.untried]
    recorder.ledger.release(untried, owner=recorder.options.owner, now=recorder.clock())
    recorder.drain(results, block=True, until=handed - len(untried))
    recorder.flush()


def _settle(ledger: Ledger, edition: Edition, report: DeliveryReport, *, queued_all: bool) -> None:
    """Paused if the run paused it; done once every subscriber is queued and no delivery may
    still go out; else sending."""
    if report.paused:
        ledger.set_edition_status(edition.id, EditionStatus.PAUSED)
    elif report.paused_by_editor:
        return  # it stays paused until resumed
    elif queued_all and not any(
        ledger.delivery_counts(edition.id).get(state) for state in OPEN_STATES
    ):
        ledger.set_edition_status(edition.id, EditionStatus.DONE)
