"""An in-process relay for fast tests: the `SMTPConnection` interface without a socket.

`FakeRelay` keeps every accepted message and answers from a script: refuse an address with
550, defer it with 451, drop the connection, or be unreachable. `FakeRelay.connect` makes the
`FakeTransport` sessions that delivery opens, one per worker, all sharing the relay.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from digest.errors import TransportError
from digest.mail.transport import Envelope, Reply, Stage


@dataclass(frozen=True, slots=True)
class Sent:
    """One message the relay took responsibility for, as the server would store it."""

    sender: str
    recipient: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Step:
    """One scripted answer to a transaction; code 0 drops the connection at `stage`."""

    code: int
    text: str
    stage: Stage


def refused(code: int = 550, text: str = "5.1.1 mailbox unavailable") -> Step:
    """A permanent refusal of the recipient."""
    return Step(code, text, Stage.RCPT)


def deferred(code: int = 451, text: str = "4.3.0 try again later") -> Step:
    """A temporary refusal of the recipient: the sender should retry later."""
    return Step(code, text, Stage.RCPT)


def dropped(stage: Stage = Stage.DOT) -> Step:
    """The connection goes away with no reply; after the data the server still has the message."""
    return Step(0, "connection dropped", stage)


@dataclass
class FakeRelay:
    """The server side: what was accepted, what is still scripted, and whether it is up."""

    sent: list[Sent] = field(default_factory=list)
    down: str = ""  # when set, opening a session fails with this reason
    sessions: int = 0
    # Every transaction as (session number, its envelope, the envelope announced ahead).
    transactions: list[tuple[int, Envelope, Envelope | None]] = field(default_factory=list)
    _script: dict[str, deque[Step]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def script(self, recipient: str, *steps: Step) -> None:
        """Answer the next transactions to `recipient` with `steps`, then accept as usual."""
        with self._lock:
            self._script.setdefault(recipient, deque()).extend(steps)

    def connect(self) -> FakeTransport:
        """A new, not yet opened session with this relay."""
        return FakeTransport(self)

    def to(self, recipient: str) -> list[Sent]:
        """The accepted messages for one address."""
        with self._lock:
            return [item for item in self.sent if item.recipient == recipient]

    def open_session(self) -> int:
        """Count a session and return its number, or refuse it while the relay is down."""
        with self._lock:
            if self.down:
                raise TransportError(self.down)
            self.sessions += 1
            return self.sessions

    def answer(
        self, session: int, sender: str, recipient: str, data: bytes, then: Envelope | None
    ) -> Step:
        """The scripted step for this transaction (else acceptance), keeping what was taken."""
        with self._lock:
            self.transactions.append((session, (sender, recipient), then))
            queued = self._script.get(recipient)
            step = queued.popleft() if queued else Step(250, "2.0.0 Ok: queued", Stage.DOT)
            if step.stage == Stage.DOT and (200 <= step.code < 300 or step.code == 0):
                self.sent.append(Sent(sender, recipient, data))
            return step


class FakeTransport:
    """One session with a `FakeRelay`; behaves like `SMTPConnection` to its caller."""

    def __init__(self, relay: FakeRelay) -> None:
        self.relay = relay
        self.sent_on_connection = 0
        self._up = False
        self._session = 0
        self._ahead: Envelope | None = None

    @property
    def is_open(self) -> bool:
        """Whether the session is up; a scripted drop or a 421 closes it."""
        return self._up

    def open(self) -> None:
        """Start a session, or raise TransportError while the relay is down."""
        self._session = self.relay.open_session()
        self._up = True
        self.sent_on_connection = 0

    def close(self) -> None:
        """End the session; never raises."""
        self._up = False
        self._ahead = None

    def abort(self, reason: str) -> None:
        """A fake transaction never blocks, so there is nothing in flight to cut."""
        self.close()

    def send(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        *,
        then: Envelope | None = None,
        transparent: bool = False,
    ) -> Reply:
        """One transaction, answered as the relay's script says. `then` is recorded, and, as
        on a real session, the next send must be of that envelope."""
        if not self._up:
            raise TransportError("send() on a closed SMTP connection")
        if self._ahead is not None and self._ahead != (sender, recipient):
            self.close()
            raise TransportError("send() for another message than the one opened ahead")
        step = self.relay.answer(self._session, sender, recipient, data, then)
        self._ahead = then
        if step.code in (0, 421):
            self.close()
        elif 200 <= step.code < 300:
            self.sent_on_connection += 1
        return Reply(step.code, step.text, step.stage)
