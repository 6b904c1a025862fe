"""Shared fixtures: a real SMTP server on a free port, a real database (SQLite in a temp dir,
and PostgreSQL: see tests/databases.py), seeded data."""

from __future__ import annotations

import os
import tempfile
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
from sqlalchemy.engine import make_url

from digest.config import Settings, load_settings
from digest.mail.transport import free_port
from digest.operations.publisher import Publisher
from tests.support.databases import (
    BACKENDS,
    START,
    PostgresServer,
    connect,
    copy_sqlite,
    in_ci,
    server_url,
    sqlite_url,
)

ROOT = Path(__file__).resolve().parent.parent
# Every test process has an unsubscribe secret of its own, so no test reads or writes the
# checkout's var/secrets.toml; the tests of `digest init` writing one unset it.
TEST_SECRET = "a-secret-for-the-tests-only-0123456789"
os.environ["DIGEST_SITE__UNSUBSCRIBE_SECRET"] = TEST_SECRET
os.environ["DIGEST_SECRETS_FILE"] = str(Path(tempfile.mkdtemp(prefix="digest-secrets-")) / "none")
# 07:00 in Budapest on a Monday: a daily and a weekly list are both due.
NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@dataclass
class Received:
    """One message as the server stored it."""

    sender: str
    recipients: list[str]
    data: bytes
    peer: tuple[str, int] = ("", 0)
    helo: str = ""  # the name the client gave in EHLO or HELO

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
                    session.host_name or "",
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The PostgreSQL test server; skips (fails when CI=true) if there is none."""
    url, given = server_url()
    if url is None:
        reason = f"no PostgreSQL server for the tests: {START}"
        if in_ci():
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        server = connect(url)
    except Exception as exc:
        reason = f"the PostgreSQL test server at {url} cannot be used ({exc}): {START}"
        if in_ci() or given:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    yield server
    server.engine.dispose()


@pytest.fixture(params=BACKENDS, ids=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend: a SQLite file in tmp_path, or a PostgreSQL
    database of its own, dropped after the test."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create()
    try:
        yield url
    finally:
        server.drop(url)


def settings_for(tmp_path: Path, port: int, **changes: Any) -> Settings:
    """The repo's own config, pointed at a temp database and the test server.

    The database is SQLite in tmp_path unless `database_url=` is among the changes.
    """
    base = load_settings(ROOT / "config" / "digest.toml")
    smtp = base.smtp.model_copy(update={"port": port, "timeout": 5.0})
    update: dict[str, Any] = {
        "database_url": sqlite_url(tmp_path),
        "preview_dir": tmp_path / "preview",
        "unsubscribe_journal": tmp_path / "unsubscribes.journal",
        "smtp": smtp,
    }
    update.update(changes)
    return base.model_copy(update=update)


@pytest.fixture
def settings(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int], database_url: str
) -> Settings:
    return settings_for(tmp_path, smtp_server[1], database_url=database_url)


class SeededTemplates:
    """Databases after `Publisher.init(seed=True, now=NOW)`, one per backend and configuration,
    each made on first use; a test gets a copy, which is much cheaper than seeding again."""

    def __init__(self, folder: Path, request: pytest.FixtureRequest) -> None:
        self.folder = folder
        self.request = request
        self.made: dict[tuple[str, Path, tuple[tuple[str, str], ...]], str] = {}
        self.server: PostgresServer | None = None  # kept: the fixture may be torn down first

    def copy_into(self, settings: Settings) -> None:
        """Make the database at `settings.database_url` a copy of the seeded one."""
        backend = "sqlite" if settings.database_url.startswith("sqlite") else "postgresql"
        lists = tuple((item.slug, item.name) for item in settings.lists)
        key = (backend, settings.seeds_dir, lists)
        if key not in self.made:
            self.made[key] = self._seed(backend, settings)
        template = self.made[key]
        if backend == "sqlite":
            copy_sqlite(
                Path(str(make_url(template).database)),
                Path(str(make_url(settings.database_url).database)),
            )
        else:
            self._server().recreate(settings.database_url, template=template)

    def drop(self) -> None:
        """Drop the PostgreSQL templates (the SQLite ones go with the temp folder)."""
        for url in self.made.values():
            if not url.startswith("sqlite"):
                self._server().drop(url)

    def _seed(self, backend: str, settings: Settings) -> str:
        if backend == "sqlite":
            url = sqlite_url(Path(tempfile.mkdtemp(dir=self.folder)))
        else:
            url = self._server().create()
        seeded = Publisher(settings.model_copy(update={"database_url": url}))
        seeded.init(seed=True, now=NOW)
        seeded.store.engine.dispose()  # a template must have no one connected
        return url

    def _server(self) -> PostgresServer:
        if self.server is None:
            self.server = self.request.getfixturevalue("postgres_server")
        return self.server


def _sqlite_file(url: str) -> Path:
    return Path(str(make_url(url).database))


@pytest.fixture(scope="session")
def seeded_templates(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[SeededTemplates]:
    templates = SeededTemplates(tmp_path_factory.mktemp("templates"), request)
    yield templates
    templates.drop()


@pytest.fixture
def publisher(settings: Settings, seeded_templates: SeededTemplates) -> Publisher:
    """The seeded application: the same as `Publisher(settings).init(seed=True, now=NOW)`."""
    seeded_templates.copy_into(settings)
    return Publisher(settings)


def decoded_header(data: bytes, name: str) -> str:
    """A header as RFC 2047 readers show it (decode_header joins adjacent encoded words and
    keeps the spaces between plain and encoded text; Python 3.11's newer parser does not)."""
    from email.header import decode_header, make_header

    raw = BytesParser(policy=policy.compat32).parsebytes(data, headersonly=True)[name]
    return str(make_header(decode_header(raw)))


# The seeded reader whose copy of the daily digest the content tests look at (a name with ő).
DIGEST_READER = "odon.gyori@example.hu"


@pytest.fixture(scope="session")
def daily_digest_as_sent(
    tmp_path_factory: pytest.TempPathFactory, seeded_templates: SeededTemplates
) -> bytes:
    """The seeded daily digest for DIGEST_READER, the bytes a real SMTP server received from
    `Publisher.send` on the repo's own config: what spam filters and mail clients get."""
    folder = tmp_path_factory.mktemp("daily-digest")
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
        settings = settings_for(folder, port)
        seeded_templates.copy_into(settings)
        result = Publisher(settings).send("daily", now=NOW)
    finally:
        controller.stop()
    assert result.created
    (received,) = handler.for_address(DIGEST_READER)
    return received.data
