"""The built-in capture SMTP server: every message it receives becomes an .eml file.

It lets a new user see real mail with no relay, and gives tests a real SMTP peer.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.config.secrets import write_private
from digest.errors import TransportError

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9@._+-]")


@dataclass(frozen=True, slots=True)
class Captured:
    """One stored message: where it went, who it was for, what it said."""

    path: Path
    sender: str
    recipients: tuple[str, ...]
    subject: str


class CaptureHandler:
    """aiosmtpd handler that writes each message to `directory` as it arrives."""

    def __init__(
        self, directory: Path, on_message: Callable[[Captured], None] | None = None
    ) -> None:
        self.directory = directory
        self.on_message = on_message
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        with self._lock:
            number = next(self._sequence)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        first = _UNSAFE_NAME.sub("_", envelope.rcpt_tos[0] if envelope.rcpt_tos else "unknown")
        path = self.directory / f"{stamp}-{number:06d}-{first}.eml"
        write_private(path, data)
        raw_subject = message_from_bytes(data).get("Subject", "")
        subject = str(make_header(decode_header(raw_subject))) if raw_subject else ""
        if self.on_message:
            self.on_message(
                Captured(
                    path=path,
                    sender=str(envelope.mail_from),
                    recipients=tuple(envelope.rcpt_tos),
                    subject=subject,
                )
            )
        return "250 2.0.0 Ok: saved as " + path.name


class CaptureServer:
    """A capture server on a thread of its own; a context manager that starts and stops it."""

    def __init__(
        self,
        directory: Path,
        *,
        host: str,
        port: int,
        on_message: Callable[[Captured], None] | None = None,
    ) -> None:
        self.handler = CaptureHandler(directory, on_message)
        self.host, self.port = host, port
        self._controller: Controller | None = None

    def start(self) -> None:
        """Listen, or raise TransportError if the port is taken."""
        # Keep the original bytes: the .eml must be exactly what the client sent.
        controller = Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            decode_data=False,
            data_size_limit=50 * 1024 * 1024,
        )
        try:
            controller.start()
        except (OSError, RuntimeError) as exc:
            raise TransportError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        self._controller = controller

    def stop(self) -> None:
        """Stop listening."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> CaptureServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
