"""A fault-injecting SMTP server for tests, after the switches of Postfix's smtp-sink.

smtp-sink scripts its misbehaviour per command: `-r`/`-f` soft and hard rejects, `-q` hang up
without a reply, `-Q` 421 and hang up, `-W command:delay` slow replies. `FaultHandler` scripts
the same per recipient address and per stage of the transaction: `Stage.RCPT` (the RCPT TO
reply) or `Stage.DOT` (the reply after the final ".", when the data has arrived). `FaultServer`
runs it on a real port, and can be stopped and started again on that port to play a relay that
is down for a while.

The server keeps every message it accepted (or stored before misbehaving), and every session it
greeted with the RCPT addresses tried in it, so tests can count copies per address and per
Message-ID, and connections.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from enum import StrEnum
from typing import Any, NoReturn

from aiosmtpd.controller import Controller

from digest.mail.transport import Stage, free_port

ACCEPT_RCPT = "250 2.1.5 Ok"
ACCEPT_DATA = "250 2.0.0 Ok: queued"


class Action(StrEnum):
    """What the server does instead of its normal answer."""

    REPLY = "reply"  # answer this reply string (smtp-sink -r, -f)
    CLOSE = "close"  # answer this reply (a 421) and hang up (smtp-sink -Q)
    DROP = "drop"  # hang up without any reply (smtp-sink -q); at DOT the message is stored first
    DELAY = "delay"  # wait, then answer normally (smtp-sink -W); at DOT the message is stored first
    DOWN = "down"  # the relay goes down: stop listening; this and every open session get 421


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted misbehaviour."""

    action: Action
    reply: str = ""
    seconds: float = 0.0


def reply(text: str) -> Fault:
    """Answer `text`, e.g. "451 4.3.0 Try again later"; a 2xx at DOT stores the message."""
    return Fault(Action.REPLY, text)


def reply_and_close(text: str = "421 4.4.2 Closing connection") -> Fault:
    """Answer (a 421, as RFC 5321 asks of a server that hangs up) and close the connection."""
    return Fault(Action.CLOSE, text)


def drop() -> Fault:
    """Close the connection without a reply; at DOT, only after storing the message."""
    return Fault(Action.DROP)


def delay(seconds: float) -> Fault:
    """Answer normally, but only after `seconds`; at DOT the message is stored before waiting.

    If the client gives up first and hangs up, the wait ends there (aiosmtpd cancels the session).
    """
    return Fault(Action.DELAY, seconds=seconds)


def go_down(text: str = "421 4.3.2 System shutting down") -> Fault:
    """The relay goes down until FaultServer.start(): it stops accepting connections, answers
    `text` and hangs up, here and at the next command of every other open session."""
    return Fault(Action.DOWN, text)


@dataclass
class Received:
    """One message as the server stored it."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    peer: tuple[str, int]

    @property
    def message_id(self) -> str:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data, headersonly=True)
        return str(parsed["Message-ID"] or "").strip()


@dataclass
class Session:
    """One greeted SMTP session and the RCPT addresses tried in it, in order."""

    peer: tuple[str, int]
    recipients: list[str] = field(default_factory=list)
    ended_by: Action | None = None


@dataclass
class _Entry:
    fault: Fault
    remaining: int | None  # None: every time


class FaultHandler:
    """An aiosmtpd handler whose answers are scripted per recipient address and stage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: dict[tuple[str, Stage], list[_Entry]] = {}
        self._sessions: dict[tuple[str, int], Session] = {}
        self._messages: list[Received] = []
        # Set by go_down(), cleared by FaultServer.start(): every command gets this and a hang-up.
        self.down: Fault | None = None
        # Set by FaultServer: stops the listener (called in the server's event loop).
        self.stop_listening: Callable[[], None] | None = None

    # -- scripting -------------------------------------------------------------------------

    def script(self, address: str, stage: Stage, fault: Fault, *, times: int | None = None) -> None:
        """Misbehave at `stage` of transactions for `address`: every time, or `times` times.

        Faults scripted for the same address and stage are used in the order given.
        """
        if stage not in (Stage.RCPT, Stage.DOT):
            raise ValueError(f"faults are scripted at RCPT or DOT, not {stage}")
        with self._lock:
            self._script.setdefault((address.lower(), stage), []).append(_Entry(fault, times))

    def clear(self) -> None:
        """Forget every scripted fault (what was recorded stays)."""
        with self._lock:
            self._script.clear()

    def _take(self, addresses: list[str], stage: Stage) -> Fault | None:
        with self._lock:
            for address in addresses:
                for entry in self._script.get((address.lower(), stage), []):
                    if entry.remaining is None:
                        return entry.fault
                    if entry.remaining > 0:
                        entry.remaining -= 1
                        return entry.fault
        return None

    # -- what the server saw -----------------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    @property
    def sessions(self) -> list[Session]:
        """Every greeted session in order (the Controller's own start-up probe never greets)."""
        with self._lock:
            return list(self._sessions.values())

    def busy_sessions(self) -> list[Session]:
        """The sessions that carried at least one transaction."""
        return [s for s in self.sessions if s.recipients]

    def per_address(self) -> dict[str, int]:
        """How many copies the server stored for each recipient address."""
        return dict(Counter(r.lower() for m in self.messages for r in m.recipients))

    def per_message_id(self) -> dict[str, int]:
        """How many copies the server stored of each Message-ID."""
        return dict(Counter(m.message_id for m in self.messages))

    def copies(self, address: str) -> list[Received]:
        """The stored messages addressed to `address`."""
        key = address.lower()
        return [m for m in self.messages if key in (r.lower() for r in m.recipients)]

    # -- aiosmtpd hooks ----------------------------------------------------------------------

    def _session(self, session: Any) -> Session:
        peer = _peer(session)
        with self._lock:
            return self._sessions.setdefault(peer, Session(peer))

    def _store(self, session: Any, envelope: Any) -> None:
        with self._lock:
            self._messages.append(
                Received(
                    sender=envelope.mail_from,
                    recipients=tuple(envelope.rcpt_tos),
                    data=envelope.original_content,
                    peer=_peer(session),
                )
            )

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # the new-style hook must set it, or MAIL gets a 503
        self._session(session)
        return responses

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        session.host_name = hostname
        self._session(session)
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.down is not None:
            await self._hang_up(server, self._session(session), self.down)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        record = self._session(session)
        with self._lock:
            record.recipients.append(address)
        if self.down is not None:
            await self._hang_up(server, record, self.down)
        fault = self._take([address], Stage.RCPT)
        if fault is None or (fault.action == Action.REPLY and fault.reply.startswith("2")):
            envelope.rcpt_tos.append(address)
            return fault.reply if fault else ACCEPT_RCPT
        if fault.action == Action.REPLY:
            return fault.reply
        if fault.action == Action.DELAY:
            await asyncio.sleep(fault.seconds)
            envelope.rcpt_tos.append(address)
            return ACCEPT_RCPT
        await self._hang_up(server, record, fault)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        record = self._session(session)
        if self.down is not None:
            await self._hang_up(server, record, self.down)
        fault = self._take(list(envelope.rcpt_tos), Stage.DOT)
        if fault is None:
            self._store(session, envelope)
            return ACCEPT_DATA
        if fault.action == Action.REPLY:
            if fault.reply.startswith("2"):
                self._store(session, envelope)
            return fault.reply
        if fault.action == Action.DELAY:
            self._store(session, envelope)
            await asyncio.sleep(fault.seconds)
            return ACCEPT_DATA
        if fault.action == Action.DROP:
            self._store(session, envelope)
        await self._hang_up(server, record, fault)

    async def _hang_up(self, server: Any, record: Session, fault: Fault) -> NoReturn:
        """Send the fault's reply (if any), close, and never return a reply for aiosmtpd to send.

        aiosmtpd keeps a session open after any reply, 421 included. push() writes the reply
        before close(), and close() flushes what is written before it shuts the socket, so the
        client reads the reply and then EOF. Closing makes aiosmtpd's connection_lost() cancel
        this session's task, which ends the wait below: nothing more is ever written.
        """
        with self._lock:
            record.ended_by = fault.action
        if fault.action == Action.DOWN and self.down is None:
            self.down = fault
            if self.stop_listening is not None:
                self.stop_listening()
        if fault.reply:
            await server.push(fault.reply)
        server.transport.close()
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable: the closed session is cancelled")


def _peer(session: Any) -> tuple[str, int]:
    host, port = session.peer[:2]
    return str(host), int(port)


class FaultServer:
    """A FaultHandler listening on a fixed free port; stop() and start() again to be "down"."""

    def __init__(
        self, handler: FaultHandler | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.handler = handler or FaultHandler()
        self.host = host
        self.port = port or free_port(host)
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> FaultServer:
        """Listen on the port (again); what the handler recorded and its script are kept."""
        if self._controller is not None:
            raise RuntimeError("the fault server is already running")
        controller = Controller(self.handler, hostname=self.host, port=self.port, decode_data=False)
        controller.start()

        def stop_listening() -> None:
            # In the server's loop: refuse new connections; open sessions carry on.
            if controller.server is not None:
                controller.server.close()

        self.handler.stop_listening = stop_listening
        self.handler.down = None
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening and end every open session."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
