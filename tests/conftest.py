"""Shared fixtures: a real SMTP server on a free port, real SQLite in a temp dir, seeded data."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from digest.app import App
from digest.config import Settings, load_settings
from digest.transport import free_port

ROOT = Path(__file__).resolve().parent.parent
# 07:00 in Budapest on a Monday: a daily and a weekly list are both due.
NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@dataclass
class Received:
    """One message as the server stored it."""

    sender: str
    recipients: list[str]
    data: bytes
    peer: tuple[str, int] = ("", 0)

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RecordingHandler:
    """An aiosmtpd handler that keeps every message and can refuse chosen recipients."""

    refuse: dict[str, str] = field(default_factory=dict)
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                    tuple(session.peer),
                )
            )
        return "250 2.0.0 Ok: queued"

    def for_address(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.recipients]


@pytest.fixture
def smtp_server() -> Iterator[tuple[RecordingHandler, int]]:
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def settings_for(tmp_path: Path, port: int, **changes: Any) -> Settings:
    """The repo's own config, pointed at a temp database and the test server."""
    base = load_settings(ROOT / "config" / "digest.toml")
    smtp = base.smtp.model_copy(update={"port": port, "timeout": 5.0})
    update: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'digest.sqlite3'}",
        "preview_dir": tmp_path / "preview",
        "smtp": smtp,
    }
    update.update(changes)
    return base.model_copy(update=update)


@pytest.fixture
def settings(tmp_path: Path, smtp_server: tuple[RecordingHandler, int]) -> Settings:
    return settings_for(tmp_path, smtp_server[1])


@pytest.fixture
def app(settings: Settings) -> App:
    application = App(settings)
    application.init(seed=True, now=NOW)
    return application


def decoded_header(data: bytes, name: str) -> str:
    """A header as RFC 2047 readers show it (decode_header joins adjacent encoded words and
    keeps the spaces between plain and encoded text; Python 3.11's newer parser does not)."""
    from email.header import decode_header, make_header

    raw = BytesParser(policy=policy.compat32).parsebytes(data, headersonly=True)[name]
    return str(make_header(decode_header(raw)))
