"""The sending side of a run: worker threads, each holding one SMTP session.

Every job handed to a worker gets exactly one `Result` back, whatever happens, because the run
waits for as many results as it handed out jobs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from digest.edition.message import MessageTemplate
from digest.errors import DigestError, TransportError
from digest.mail.pacing import Pacer
from digest.mail.transport import Envelope, Reply, Stage
from digest.operations.recorder import DeliveryOptions, Result
from digest.store import Claim

# Delivery logs under one name, whichever of its modules writes: operators filter on it.
log = logging.getLogger("digest.operations.delivery")


class Transport(Protocol):
    """What delivery needs from an SMTP connection (`SMTPConnection`, `FakeTransport`)."""

    @property
    def is_open(self) -> bool: ...
    @property
    def sent_on_connection(self) -> int: ...
    def open(self) -> None: ...
    def close(self) -> None: ...
    def send(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        *,
        then: Envelope | None = None,
        transparent: bool = False,
    ) -> Reply: ...
    def abort(self, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Job:
    """One claim to send, with the message variant its subscriber gets and its envelope
    sender (one per message with VERP)."""

    claim: Claim
    template: MessageTemplate
    envelope_from: str


class Breaker:
    """The circuit breaker, shared by every connection of a run: a relay that times out or
    drops the connection on message after message would cost a full deadline each, so after
    `after` such silences in a row no connection starts another transaction; the rest of the
    edition waits for the next run. Judged where the replies arrive, not after they are
    recorded, so a busy machine cannot let more transactions slip in before the verdict."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.tripped = threading.Event()
        self.reason = ""
        self._in_a_row = 0
        self._lock = threading.Lock()

    def note(self, reply: Reply) -> None:
        """Count a silence (no reply after the session was set up), or start again."""
        silent = reply.code == 0 and reply.stage not in (Stage.PREPARE, Stage.CONNECT)
        with self._lock:
            self._in_a_row = self._in_a_row + 1 if silent else 0
            if self._in_a_row >= self.after and not self.tripped.is_set():
                self.reason = (
                    f"the relay timed out or dropped the connection {self._in_a_row}"
                    f" times in a row (delivery.breaker_after), last: {reply}"
                )
                self.tripped.set()


@dataclass(frozen=True, slots=True)
class _Made:
    """A job with its message made, or the reason it could not be (a name that cannot go into
    a header, say)."""

    job: Job
    data: bytes | Reply

    @property
    def envelope(self) -> Envelope:
        return (self.job.envelope_from, self.job.claim.subscriber.email)


class Worker(threading.Thread):
    """One SMTP session: takes claims, sends, hands back replies; reconnects as needed.

    It takes, and makes, the next job before sending the current one, so that the next
    envelope can go ahead in the same write as this message's end (one round trip a message).
    """

    def __init__(
        self,
        *,
        connect: Callable[[], Transport],
        jobs: queue.SimpleQueue[Job | None],
        results: queue.SimpleQueue[Result],
        build: Callable[[Job], bytes],
        pacer: Pacer,
        breaker: Breaker,
        options: DeliveryOptions,
    ) -> None:
        super().__init__(daemon=True)
        self.connect, self.jobs, self.results, self.build = connect, jobs, results, build
        self.pacer, self.breaker, self.options = pacer, breaker, options
        self.untried: list[Claim] = []  # handed out after the breaker tripped or a cut: never sent
        self.transport: Transport | None = None
        self.opened_at = 0.0
        self._ended = False  # the None that ends the run has been taken
        self._cut = False  # abort() was called: nothing more is started

    def _session(self) -> Transport:
        transport = self.transport
        if transport is not None and (self._expired(transport) or not transport.is_open):
            transport.close()
            transport = None
        if transport is None:
            # Held before it opens, so that abort() can cut a session set-up as well.
            self.transport = transport = self.connect()
            transport.open()
            self.opened_at = time.monotonic()
        return transport

    def _expired(self, transport: Transport, *, after: int = 0) -> bool:
        """Whether the session is due for renewal (`after` more messages on it)."""
        return (
            transport.sent_on_connection + after >= self.options.messages_per_connection
            or time.monotonic() - self.opened_at >= self.options.seconds_per_connection
        )

    def abort(self, reason: str) -> None:
        """End whatever this worker is waiting for on the network, from another thread; the
        job it holds next is not started."""
        self._cut = True
        transport = self.transport
        if transport is not None:
            transport.abort(reason)

    def run(self) -> None:
        """Send jobs until the None that says the run is over, then close the session."""
        try:
            made = self._take(block=True)
            while made is not None:
                following = self._take(block=False)
                if self.breaker.tripped.is_set() or self._cut:
                    self.untried.append(made.job.claim)
                else:
                    reply = self._attempt(made, following)
                    self.breaker.note(reply)
                    self.results.put(Result(made.job.claim, reply))
                made = following or self._take(block=True)
        finally:
            if self.transport is not None:
                self.transport.close()

    def _take(self, *, block: bool) -> _Made | None:
        """The next job with its message made; None once the run is over or, not blocking,
        while no job waits."""
        if self._ended:
            return None
        try:
            job = self.jobs.get(block=block)
        except queue.Empty:
            return None
        if job is None:
            self._ended = True
            return None
        try:
            return _Made(job, self.build(job))
        except DigestError as exc:
            return _Made(job, Reply(0, str(exc), Stage.PREPARE))

    def _attempt(self, made: _Made, following: _Made | None) -> Reply:
        if isinstance(made.data, Reply):
            return made.data
        try:
            transport = self._session()
        except TransportError as exc:
            self.transport = None
            return Reply(0, str(exc), Stage.CONNECT)
        self.pacer.wait()
        # Ahead only what this session will carry next, at once: not a message that could
        # not be made, nor one a renewal or the pacer would hold (an open DATA must not idle).
        then = (
            following.envelope
            if following is not None
            and not isinstance(following.data, Reply)
            and self.pacer.unlimited
            and not self._expired(transport, after=1)
            else None
        )
        try:
            # Built from the edition's template: no line starts with ".", nothing to stuff.
            return transport.send(*made.envelope, made.data, then=then, transparent=True)
        except Exception as exc:  # a bug must not hang the run; the message may have gone
            log.exception("unexpected error sending to %s", made.job.claim.subscriber.email)
            transport.close()
            return Reply(0, repr(exc), Stage.DOT)


def start_workers(
    *,
    connect: Callable[[], Transport],
    jobs: queue.SimpleQueue[Job | None],
    results: queue.SimpleQueue[Result],
    build: Callable[[Job], bytes],
    breaker: Breaker,
    options: DeliveryOptions,
) -> list[Worker]:
    """One thread per connection, sharing one pacer so the rate limit holds for the run."""
    pacer = Pacer(
        rate=options.rate_per_second,
        hourly_cap=options.hourly_cap,
        clock=time.monotonic,
        sleep=time.sleep,
    )
    workers = [
        Worker(
            connect=connect,
            jobs=jobs,
            results=results,
            build=build,
            pacer=pacer,
            breaker=breaker,
            options=options,
        )
        for _ in range(options.connections)
    ]
    for worker in workers:
        worker.start()
    return workers


def take_all(jobs: queue.SimpleQueue[Job | None]) -> list[Claim]:
    """Empty the job queue, returning the claims no connection picked up."""
    taken: list[Claim] = []
    while True:
        try:
            item = jobs.get_nowait()
        except queue.Empty:
            return taken
        if item is not None:
            taken.append(item.claim)
