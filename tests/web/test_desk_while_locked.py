"""The desk's pages, served by a running `digest web`, answer while a send holds SQLite's
write lock: an editor who only looks never waits for the sender's commits."""

from __future__ import annotations

import http.client
import json
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import pytest

from digest.mail.transport import free_port
from digest.operations.editors import add_editor
from digest.operations.publisher import Publisher
from tests.conftest import NOW, SeededTemplates
from tests.support.locking import PROMPT, database_of, sent_install, write_lock_held
from tests.support.web import CSRF_INPUT, EDITOR_TOKEN, start_web

EDITOR, PASSWORD = "editor@budapestpost.example", "correct horse battery staple"
READER = "odon.gyori@example.hu"
# argon2 at its lowest cost, in the test and in the server alike: nothing is re-hashed.
CHEAP_HASH = {"hash_memory_kib": 1024, "hash_passes": 1}


@dataclass(frozen=True)
class Desk:
    """A running `digest web` on a sent install, with a signed-in editor's cookie."""

    port: int
    database: Path
    cookie: str
    edition_id: int
    edition_date: date
    subscriber_id: int
    sent: int

    def get(self, path: str) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=PROMPT)
        try:
            connection.request("GET", path, headers={"Cookie": self.cookie})
            answer = connection.getresponse()
            return answer.status, answer.read().decode()
        finally:
            connection.close()


def _started(process: subprocess.Popen[bytes], lines: list[str]) -> threading.Event:
    """Collect the server's output; the event is set at "Application startup complete"."""
    ready = threading.Event()

    def collect() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.append(raw.decode("utf-8", "replace").rstrip())
            if "Application startup complete" in lines[-1]:
                ready.set()
        ready.set()  # it ended: the caller finds it dead

    threading.Thread(target=collect, daemon=True).start()
    return ready


def _sign_in(port: int) -> str:
    """Sign in through the form (a write: before the lock is taken); the session cookie."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/desk/sign-in")
        page = connection.getresponse()
        csrf_cookie = (page.getheader("set-cookie") or "").split(";")[0]
        found = CSRF_INPUT.search(page.read().decode())
        assert found and csrf_cookie
        form = {"csrf_token": found.group(1), "email": EDITOR, "password": PASSWORD}
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": csrf_cookie}
        connection.request("POST", "/desk/sign-in", urlencode(form), headers)
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 303, answer.status
        session = [v.split(";")[0] for k, v in answer.getheaders() if k.lower() == "set-cookie"]
        assert session
        return "; ".join([csrf_cookie, *session])
    finally:
        connection.close()


@pytest.fixture(scope="module")
def desk(
    tmp_path_factory: pytest.TempPathFactory, seeded_templates: SeededTemplates
) -> Iterator[Desk]:
    folder = tmp_path_factory.mktemp("locked-desk")
    settings = sent_install(folder, seeded_templates)
    cheap = settings.desk.model_copy(update=CHEAP_HASH)
    publisher = Publisher(settings)
    add_editor(publisher.store, EDITOR, PASSWORD, settings=cheap, now=NOW)
    publisher.store.engine.dispose()
    database = database_of(settings)
    with sqlite3.connect(database) as connection:
        ((edition_id, edition_date, count),) = connection.execute(
            "SELECT edition_id, edition_date, count(*) FROM deliveries"
            " JOIN editions ON editions.id = edition_id WHERE state = 'sent' GROUP BY edition_id"
        ).fetchall()
        (subscriber_id,) = connection.execute(
            "SELECT id FROM subscribers WHERE email_key = ?", (READER,)
        ).fetchone()
    port = free_port()
    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": settings.database_url,
        "DIGEST_UNSUBSCRIBE_JOURNAL": str(settings.unsubscribe_journal),
        "DIGEST_PREVIEW_DIR": str(settings.preview_dir),
        "DIGEST_WEB__EDITOR_TOKEN": EDITOR_TOKEN,
        **{f"DIGEST_DESK__{name.upper()}": str(value) for name, value in CHEAP_HASH.items()},
    }
    process = start_web(port, env)
    lines: list[str] = []
    try:
        assert _started(process, lines).wait(30) and process.poll() is None, "\n".join(lines)
        yield Desk(
            port=port,
            database=database,
            cookie=_sign_in(port),
            edition_id=edition_id,
            edition_date=date.fromisoformat(edition_date),
            subscriber_id=subscriber_id,
            sent=count,
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


def _live(desk: Desk, body: str) -> bool:
    counts = json.loads(body)["counts"]
    return bool(counts["sent"] == desk.sent and counts["sending"] == 0)


def _has(marker: Callable[[Desk], str]) -> Callable[[Desk, str], bool]:
    return lambda desk, body: marker(desk) in body


# id: (path, given the desk; whether the page shows what it must). The counts are the
# committed ones: the lock holder's change of every row to `sending` is not seen.
PAGES: dict[str, tuple[Callable[[Desk], str], Callable[[Desk, str], bool]]] = {
    "today": (lambda d: "/desk", _has(lambda d: "Next run:")),
    "draft": (lambda d: "/desk/draft/daily", _has(lambda d: "<html")),
    "editions": (
        lambda d: "/desk/editions",
        _has(lambda d: f'<td data-count="sent">{d.sent}</td>'),
    ),
    "edition": (
        lambda d: f"/desk/editions/{d.edition_id}",
        _has(lambda d: f'<strong data-count="sent">{d.sent}</strong>'),
    ),
    "live-json": (lambda d: f"/desk/editions/{d.edition_id}/live.json", _live),
    "stats-index": (lambda d: "/desk/stats", _has(lambda d: f"/desk/stats/{d.edition_id}")),
    "stats": (
        lambda d: f"/desk/stats/{d.edition_id}",
        _has(lambda d: f'<th scope="row">Delivered</th><td>{d.sent}</td>'),
    ),
    "stats-csv": (lambda d: f"/desk/stats/{d.edition_id}.csv", _has(lambda d: "article")),
    "search": (lambda d: "/desk/subscribers?q=gyori", _has(lambda d: READER)),
    "subscriber": (lambda d: f"/desk/subscribers/{d.subscriber_id}", _has(lambda d: READER)),
    "archive": (
        lambda d: "/archive/daily",
        _has(lambda d: f"/archive/daily/{d.edition_date}"),
    ),
    "archived": (lambda d: f"/archive/daily/{d.edition_date}", _has(lambda d: "<html")),
    "preview": (
        lambda d: f"/editor/preview/daily?token={EDITOR_TOKEN}",
        _has(lambda d: "<html"),
    ),
}


@pytest.mark.parametrize("name", list(PAGES), ids=list(PAGES))
def test_a_desk_page_answers_while_a_send_holds_the_write_lock(desk: Desk, name: str) -> None:
    path, shows = PAGES[name]
    with write_lock_held(desk.database):
        started = time.monotonic()
        status, body = desk.get(path(desk))
        took = time.monotonic() - started
    assert status == 200, body[:500]
    assert took < PROMPT
    assert shows(desk, body), body[:2000]
