"""The editors' desk behind its sign-in, through Starlette's TestClient on a real database:
sessions, CSRF, lock-out, sign-out, and today's drafts."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from digest.config import Settings
from digest.operations.editors import add_editor
from digest.operations.publisher import Publisher
from digest.web import create_app
from digest.web.desk import SESSION_COOKIE
from tests.conftest import NOW, RecordingHandler, SeededTemplates
from tests.support.databases import sqlite_url
from tests.support.web import CSRF_INPUT, web_settings

BASE = "http://testserver"
EDITOR, PASSWORD = "Editor@budapestpost.example", "correct horse battery staple"


@dataclass
class Desk:
    settings: Settings
    publisher: Publisher
    client: TestClient
    clock: list[datetime]

    def csrf(self, path: str = "/desk/sign-in") -> str:
        found = CSRF_INPUT.search(self.client.get(path).text)
        assert found
        return found.group(1)

    def sign_in(self, email: str = EDITOR, password: str = PASSWORD, **extra: str) -> object:
        form = {"csrf_token": self.csrf(), "email": email, "password": password, **extra}
        return self.client.post("/desk/sign-in", data=form, follow_redirects=False)

    def later(self, **delta: float) -> None:
        self.clock[0] += timedelta(**delta)


def make_desk(
    tmp_path: Path,
    smtp_port: int,
    templates: SeededTemplates,
    database_url: str,
    adjust: Callable[[Settings], Settings] = lambda settings: settings,
) -> Iterator[Desk]:
    settings = adjust(web_settings(tmp_path, smtp_port, BASE, database_url=database_url))
    # argon2 at its lowest cost: these tests are about the rules, not the hash's strength
    cheap = settings.desk.model_copy(update={"hash_memory_kib": 1024, "hash_passes": 1})
    settings = settings.model_copy(update={"desk": cheap})
    templates.copy_into(settings)
    publisher = Publisher(settings)
    add_editor(publisher.store, EDITOR, PASSWORD, settings=settings.desk, now=NOW)
    clock = [NOW]
    client = TestClient(create_app(settings, clock=lambda: clock[0]))
    with client:
        yield Desk(settings, publisher, client, clock)


@pytest.fixture
def desk(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int], seeded_templates: SeededTemplates
) -> Iterator[Desk]:
    """A desk on SQLite: the rules do not depend on the database."""
    yield from make_desk(tmp_path, smtp_server[1], seeded_templates, sqlite_url(tmp_path))


@pytest.fixture
def desk_on_each_backend(
    tmp_path: Path,
    smtp_server: tuple[RecordingHandler, int],
    database_url: str,
    seeded_templates: SeededTemplates,
) -> Iterator[Desk]:
    yield from make_desk(tmp_path, smtp_server[1], seeded_templates, database_url)


DESK_URLS = [
    ("GET", "/desk"),
    ("GET", "/desk/draft/daily"),
    ("POST", "/desk/sign-out"),
    ("POST", "/desk/approve/daily"),
    ("POST", "/desk/test-send/daily"),
    ("POST", "/desk/shape/daily"),
]


@pytest.mark.parametrize(("method", "path"), DESK_URLS)
def test_every_desk_url_refuses_a_visitor_without_a_session(
    desk: Desk, method: str, path: str
) -> None:
    for cookie in ("", "forged", desk_cookie_of_another_install()):
        desk.client.cookies.clear()
        if cookie:
            desk.client.cookies.set(SESSION_COOKIE, cookie, path="/desk")
        response = desk.client.request(method, path, follow_redirects=False)
        if method == "GET":
            assert response.status_code == 303
            assert response.headers["location"] == f"/desk/sign-in?next={path}"
        else:
            assert response.status_code == 403
        assert "Subject:" not in response.text


def desk_cookie_of_another_install() -> str:
    """A well-formed session value signed with some other secret."""
    from digest.edition.signing import sign

    return sign(b"\x00" * 24, purpose="desk-session", secret=b"other install", key_id=1)


def test_sign_in_gives_a_strict_session_and_shows_todays_drafts(
    desk_on_each_backend: Desk,
) -> None:
    desk = desk_on_each_backend
    response = desk.sign_in(next="/desk")
    assert response.status_code == 303 and response.headers["location"] == "/desk"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/desk" in cookie
    assert "Max-Age=43200" in cookie  # 12 hours, the default session
    today = desk.client.get("/desk")
    assert today.status_code == 200 and today.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in today.headers["content-security-policy"]
    for item in desk.settings.lists:
        assert f'<h2 id="list-{item.slug}">{html.escape(item.name)}</h2>' in today.text
        assert f'src="/desk/draft/{item.slug}"' in today.text
    assert "Next run: <strong>" in today.text and "Subject: " in today.text
    assert "editor@budapestpost.example".lower() in today.text.lower()
    draft = desk.client.get("/desk/draft/daily")
    assert draft.status_code == 200 and draft.headers["x-frame-options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in draft.headers["content-security-policy"]
    assert draft.text.lstrip().lower().startswith("<!doctype html")
    assert desk.client.get("/desk/draft/nosuchlist").status_code == 404


def test_a_wrong_password_and_an_unknown_address_get_the_same_answer(desk: Desk) -> None:
    wrong = desk.sign_in(password="not the password at all")
    unknown = desk.sign_in(email="nobody@budapestpost.example")
    assert wrong.status_code == unknown.status_code == 401
    message = "Wrong address or password."
    assert message in wrong.text and message in unknown.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")


def test_repeated_failures_lock_the_account_even_against_the_right_password(
    desk_on_each_backend: Desk,
) -> None:
    desk = desk_on_each_backend
    for _ in range(desk.settings.desk.lock_after - 1):
        assert desk.sign_in(password="guess guess guess").status_code == 401
    locked = desk.sign_in(password="guess guess guess")
    assert locked.status_code == 429 and "locked until" in locked.text
    assert desk.sign_in().status_code == 429  # the right password, during the lock
    desk.later(minutes=desk.settings.desk.lock_minutes + 1)
    assert desk.sign_in().status_code == 303
    editor = desk.publisher.store.editor_by_email(EDITOR)
    assert editor is not None and editor.failed_sign_ins == 0 and editor.locked_until is None


def test_signing_out_ends_the_session_for_good(desk: Desk) -> None:
    desk.sign_in()
    old = desk.client.cookies.get(SESSION_COOKIE)
    assert old and desk.client.get("/desk").status_code == 200
    form = {"csrf_token": desk.csrf("/desk")}
    done = desk.client.post("/desk/sign-out", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/desk/sign-in"
    desk.client.cookies.clear()
    desk.client.cookies.set(SESSION_COOKIE, old, path="/desk")  # a copy kept from before
    assert desk.client.get("/desk", follow_redirects=False).status_code == 303


def test_a_session_ends_after_its_hours(desk: Desk) -> None:
    desk.sign_in()
    desk.later(hours=desk.settings.desk.session_hours - 0.1)
    assert desk.client.get("/desk").status_code == 200
    desk.later(hours=0.2)
    assert desk.client.get("/desk", follow_redirects=False).status_code == 303


def test_sign_in_without_the_forms_csrf_token_is_refused(desk: Desk) -> None:
    desk.client.get("/desk/sign-in")
    form = {"email": EDITOR, "password": PASSWORD}
    response = desk.client.post("/desk/sign-in", data=form, follow_redirects=False)
    assert response.status_code == 403 and SESSION_COOKIE not in str(response.headers)


@pytest.mark.parametrize(
    ("given", "lands"),
    [
        ("/desk/draft/daily", "/desk/draft/daily"),
        ("//evil.example/desk", "/desk"),
        ("https://evil.example/desk", "/desk"),
        ("/\\evil.example", "/desk"),
        ("/archive", "/desk"),
    ],
)
def test_after_sign_in_only_desk_pages_of_this_site(desk: Desk, given: str, lands: str) -> None:
    page = desk.client.get("/desk/sign-in", params={"next": given}).text
    found = re.search(r'name="next" value="([^"]*)"', page)
    assert found and found.group(1) == lands
    response = desk.sign_in(next=given)
    assert response.headers["location"] == lands
