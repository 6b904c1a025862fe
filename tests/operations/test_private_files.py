"""Files that hold readers' addresses and tokens are the owner's alone (mode 0600), whatever
the umask: the SQLite database with its -wal and -shm, previews, captured mail."""

from __future__ import annotations

import os
import smtplib
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from digest.mail.capture import CaptureServer
from digest.mail.transport import free_port
from digest.operations.publisher import Publisher
from tests.conftest import NOW, settings_for


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """A umask that would let everyone read new files, so 0600 must come from the code."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_makes_the_database_and_its_wal_and_shm_owner_only(tmp_path: Path) -> None:
    publisher = Publisher(settings_for(tmp_path, free_port()))
    publisher.init(seed=True, now=NOW)
    database = Path(str(publisher.store.engine.url.database))
    with publisher.store.engine.begin() as connection:  # an open writer keeps the WAL files
        connection.execute(text("UPDATE lists SET name = name"))
        found = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
        assert {path.name: mode(path) for path in found} == {path.name: 0o600 for path in found}
    preview = publisher.preview(
        "daily", now=NOW, out_dir=tmp_path / "preview", subscriber="odon.gyori@example.hu"
    )
    written = [preview.html, preview.text, preview.eml]
    assert {path.name: mode(path) for path in written} == {path.name: 0o600 for path in written}
    preview.eml.chmod(0o644)  # a file left by an older version is tightened when rewritten
    publisher.preview("daily", now=NOW, out_dir=tmp_path / "preview", subscriber=preview.recipient)
    assert mode(preview.eml) == 0o600


def test_the_capture_server_saves_mail_owner_only(tmp_path: Path) -> None:
    port = free_port()
    with (
        CaptureServer(tmp_path / "mail", host="127.0.0.1", port=port),
        smtplib.SMTP("127.0.0.1", port, timeout=5) as client,
    ):
        client.sendmail("a@example.com", ["b@example.com"], b"Subject: hi\r\n\r\nbody\r\n")
    (saved,) = (tmp_path / "mail").glob("*.eml")
    assert mode(saved) == 0o600 and b"body" in saved.read_bytes()
