"""smtplib with a wall-clock deadline: every read and write gets only the time that is left.

smtplib's own timeout is per socket operation, so a relay that trickles `250-` lines, or one
byte at a time, can hold a sender forever. Here the socket timeout is recomputed from the
remaining deadline before every `recv` and `sendall`, so no pace of trickling extends it.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Buffer


class DeadlineExceeded(TimeoutError):
    """The deadline of a session set-up or a transaction ran out (not one slow read)."""


class _Deadline:
    """A point on the monotonic clock, and what it bounds (for the error message)."""

    def __init__(self) -> None:
        self.at = float("inf")
        self.what = ""
        self._renew = True

    def start(self, seconds: float, what: str) -> None:
        self.at, self.what = time.monotonic() + seconds, what
        self._renew = True

    def timeout(self, per_operation: float | None) -> float:
        """The socket timeout for the next operation; raises once the deadline has passed."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(self.what)
        return left if per_operation is None else min(left, per_operation)

    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def bound(self, sock: socket.socket, per_operation: float | None) -> None:
        """Give the socket's next operation no more than `timeout(per_operation)`.

        Within one deadline the allowance only shrinks, so the timeout is set again only
        when it must shrink: each `settimeout` is a system call that lets go of the GIL (a
        hand-off between the sending threads), and on a healthy relay every operation of a
        transaction would set the same per-operation value.
        """
        wanted = self.timeout(per_operation)
        current = sock.gettimeout()
        if self._renew or current is None or current > wanted:
            sock.settimeout(wanted)
            self._renew = False


class _Lines:
    """The reply reader smtplib gets instead of `sock.makefile()`: its own buffer, one
    bounded `recv` at a time."""

    def __init__(self, sock: socket.socket, deadline: _Deadline, per_read: float | None) -> None:
        self.sock, self.deadline, self.per_read = sock, deadline, per_read
        self.buffer = b""

    def readline(self, limit: int = -1) -> bytes:
        while b"\n" not in self.buffer and (limit < 0 or len(self.buffer) < limit):
            self.deadline.bound(self.sock, self.per_read)
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                if self.deadline.expired():
                    raise DeadlineExceeded(self.deadline.what) from None
                raise
            if not chunk:
                break
            self.buffer += chunk
        end = self.buffer.find(b"\n") + 1 or len(self.buffer)
        if limit >= 0:
            end = min(end, limit)
        line, self.buffer = self.buffer[:end], self.buffer[end:]
        return line

    def close(self) -> None:
        self.buffer = b""


class _Bounded(smtplib.SMTP):
    """Reads, writes and connects within `deadline`, set by the caller before each stage."""

    deadline: _Deadline

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        self._host = host  # smtplib sets it only when given the host up front; TLS checks it
        sock: socket.socket = super()._get_socket(  # type: ignore[misc]
            host, port, self.deadline.timeout(timeout)
        )
        return sock

    def send(self, s: Buffer | str) -> None:
        if self.sock is not None:
            self.deadline.bound(self.sock, self.timeout)
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:
            self.file = _Lines(self.sock, self.deadline, self.timeout)
        return super().getreply()


class BoundedSMTP(_Bounded):
    """Plain SMTP (STARTTLS optional) under a deadline."""

    def __init__(self, *, local_hostname: str | None, timeout: float) -> None:
        self.deadline = _Deadline()
        super().__init__(local_hostname=local_hostname, timeout=timeout)


class BoundedSMTPSSL(_Bounded, smtplib.SMTP_SSL):
    """Implicit TLS (port 465) under a deadline."""

    def __init__(
        self, *, local_hostname: str | None, timeout: float, context: ssl.SSLContext
    ) -> None:
        self.deadline = _Deadline()
        smtplib.SMTP_SSL.__init__(
            self,
            local_hostname=local_hostname,
            timeout=timeout,
            context=context,
        )
