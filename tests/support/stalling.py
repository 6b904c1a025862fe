"""A relay that misbehaves below the SMTP library: it trickles, stalls or resets.

aiosmtpd answers each command whole, so the faults that only a raw socket can produce live
here: `250-` continuation lines one per `interval` that never end, no reply at all after the
final ".", and a TCP reset. A plain threaded socket server in the test process; every other
command gets a healthy answer (no PIPELINING, so the client goes command by command).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from enum import StrEnum
from typing import BinaryIO

from digest.mail.transport import free_port


class Misbehaviour(StrEnum):
    TRICKLE_EHLO = "trickle-ehlo"  # the EHLO reply never ends
    TRICKLE_DOT = "trickle-dot"  # the reply to the final "." never ends
    STALL_DOT = "stall-dot"  # no reply to the final ".", the connection stays open
    RESET_DOT = "reset-dot"  # a TCP reset instead of a reply to the final "."


class StallingRelay:
    """Misbehaves on every message after the first `healthy` ones (counted over all
    connections); records the data of every message it read to the end."""

    def __init__(self, fault: Misbehaviour, *, healthy: int = 0, interval: float = 1.0) -> None:
        self.fault, self.healthy, self.interval = fault, healthy, interval
        self.port = free_port()
        self.messages: list[bytes] = []
        # Released once per message (or, trickling EHLO, per session) it misbehaved on.
        self.faulted = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connections: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> StallingRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
            pass  # wakes accept()
        self._thread.join()
        self._listener.close()
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while True:
            conn, _ = self._listener.accept()
            if self._stop.is_set():
                conn.close()
                return
            with self._lock:
                self._connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            lines = conn.makefile("rb")
            conn.sendall(b"220 stalling.test ESMTP\r\n")
            while line := lines.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    if self.fault == Misbehaviour.TRICKLE_EHLO:
                        self.faulted.release()
                        return self._trickle(conn)
                    conn.sendall(b"250-stalling.test\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    if not self._message(conn, lines):
                        return None
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return None
                else:  # MAIL, RCPT, RSET, NOOP
                    conn.sendall(b"250 ok\r\n")
        return None

    def _message(self, conn: socket.socket, lines: BinaryIO) -> bool:
        """Read one message to its final "."; answer it, or misbehave (then False)."""
        data = b""
        while (line := lines.readline()) not in (b".\r\n", b""):
            data += line
        with self._lock:
            self.messages.append(data)
            healthy = len(self.messages) <= self.healthy
        if healthy:
            conn.sendall(b"250 2.0.0 queued\r\n")
            return True
        self.faulted.release()
        if self.fault == Misbehaviour.TRICKLE_DOT:
            self._trickle(conn)
        elif self.fault == Misbehaviour.STALL_DOT:
            while conn.recv(4096):  # until the client hangs up (or the relay is stopped)
                pass
        elif self.fault == Misbehaviour.RESET_DOT:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False

    def _trickle(self, conn: socket.socket) -> None:
        """One `250-` line per interval, forever: each read succeeds, no reply ever ends."""
        while not self._stop.is_set():
            conn.sendall(b"250-still thinking\r\n")
            self._stop.wait(self.interval)
