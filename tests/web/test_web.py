"""The web app's HTTP rules, through Starlette's TestClient against a real SQLite database
and a real SMTP server: double opt-in, RFC 8058 one-click, CSRF, honeypot, rate limits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from digest.config import Settings
from digest.edition.tokens import unsubscribe_token
from digest.errors import NotFoundError
from digest.operations.publisher import Publisher
from digest.store import Store
from digest.web import create_app
from tests.conftest import NOW, RecordingHandler, SeededTemplates
from tests.support.bulk import add_subscribers
from tests.support.web import (
    CSRF_INPUT,
    EDITOR_TOKEN,
    altered,
    link_in,
    status_of,
    token_for,
    web_settings,
)

BASE = "http://testserver"
READER = "odon.gyori@example.hu"  # a seeded reader, active on daily, business and weekly


@dataclass
class Site:
    settings: Settings
    publisher: Publisher
    client: TestClient
    mail: RecordingHandler

    @property
    def store(self) -> Store:
        return self.publisher.store

    def csrf(self, path: str = "/subscribe") -> str:
        found = CSRF_INPUT.search(self.client.get(path).text)
        assert found
        return found.group(1)

    def sign_up(self, email: str, **extra: Any) -> Any:
        form = {"csrf_token": self.csrf(), "email": email, "list": "daily", **extra}
        return self.client.post("/subscribe", data=form)


def make_site(
    tmp_path: Path,
    smtp: tuple[RecordingHandler, int],
    templates: SeededTemplates,
    *,
    database_url: str | None = None,
    **web: Any,
) -> Site:
    settings = web_settings(tmp_path, smtp[1], BASE, database_url=database_url, **web)
    templates.copy_into(settings)
    publisher = Publisher(settings)
    return Site(settings, publisher, TestClient(create_app(settings, clock=lambda: NOW)), smtp[0])


@pytest.fixture
def site(
    tmp_path: Path,
    smtp_server: tuple[RecordingHandler, int],
    database_url: str,
    seeded_templates: SeededTemplates,
) -> Iterator[Site]:
    made = make_site(tmp_path, smtp_server, seeded_templates, database_url=database_url)
    with made.client:
        yield made


# -- sign-up and confirmation ------------------------------------------------------------------


def test_sign_up_sends_one_confirmation_and_only_the_post_confirms(site: Site) -> None:
    response = site.sign_up("New.Reader@Example.com", name="Új Olvasó")
    assert response.status_code == 200 and "Check your inbox" in response.text
    (mail,) = site.mail.messages
    assert mail.recipients == ["New.Reader@example.com"]
    message = mail.message
    assert message["From"].addresses[0].addr_spec == "subscriptions@budapestpost.example"
    assert message["From"].addresses[0].addr_spec not in {
        item.from_address for item in site.settings.lists
    }
    assert message["Auto-Submitted"] == "auto-generated" and mail.data.isascii()
    assert "Új" not in message.as_string()  # nothing the visitor typed reaches the mail
    new = site.store.subscriber_by_email("new.reader@example.com")
    assert new.name == "" and status_of(site.store, new.email, "daily") == "pending"
    assert new.id not in {s.id for s in site.store.active_subscribers("daily")}

    link = link_in(message, rf"{BASE}/confirm/\S+")
    page = site.client.get(link)
    assert page.status_code == 200 and "Budapest Post Daily" in page.text
    assert status_of(site.store, new.email, "daily") == "pending"  # a GET changes nothing
    done = site.client.post(link, follow_redirects=False)
    assert done.status_code == 200 and "You are subscribed" in done.text
    assert status_of(site.store, new.email, "daily") == "active"
    assert site.store.subscriber_by_email(new.email).name == "Új Olvasó"
    prefs = re.search(r'href="(/preferences/[^"]+)"', done.text)
    assert prefs and site.client.get(prefs.group(1)).status_code == 200


def test_pending_subscribers_get_no_digest(site: Site) -> None:
    site.sign_up("waiting@example.com")
    site.mail.messages.clear()
    site.publisher.send("daily", now=NOW)
    assert site.mail.messages and not site.mail.for_address("waiting@example.com")


def test_a_confirmation_link_expires_and_cannot_undo_a_later_unsubscribe(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int], seeded_templates: SeededTemplates
) -> None:
    site = make_site(tmp_path, smtp_server, seeded_templates)
    site.sign_up("later@example.com")
    link = link_in(site.mail.messages[0].message, rf"{BASE}/confirm/\S+")
    late = TestClient(create_app(site.settings, clock=lambda: NOW + timedelta(hours=73)))
    assert late.post(link).status_code == 400
    assert status_of(site.store, "later@example.com", "daily") == "pending"
    assert site.client.post(link).status_code == 200
    later = TestClient(create_app(site.settings, clock=lambda: NOW + timedelta(hours=1)))
    token = token_for(site.settings, site.store, "later@example.com", "daily")
    later.post(f"/u/daily/{token}", data={"List-Unsubscribe": "One-Click"})
    assert later.post(link).status_code == 200
    assert status_of(site.store, "later@example.com", "daily") == "unsubscribed"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda form: form.pop("csrf_token"),
        lambda form: form.update(csrf_token=altered(form["csrf_token"])),
    ],
    ids=["missing", "forged"],
)
def test_sign_up_without_a_good_csrf_token_is_refused(site: Site, tamper: Any) -> None:
    form = {"csrf_token": site.csrf(), "email": "x@example.com", "list": "daily"}
    tamper(form)
    response = site.client.post("/subscribe", data=form)
    assert response.status_code == 403
    assert not site.mail.messages


def test_csrf_token_needs_its_own_cookie(site: Site) -> None:
    token = site.csrf()
    fresh = TestClient(site.client.app)
    fresh.get("/subscribe")  # a cookie of its own, which the stolen field does not match
    response = fresh.post(
        "/subscribe", data={"csrf_token": token, "email": "x@example.com", "list": "daily"}
    )
    assert response.status_code == 403


def test_honeypot_is_accepted_silently_and_does_nothing(site: Site) -> None:
    real = site.sign_up("person@example.com")
    site.mail.messages.clear()
    bot = site.sign_up("bot@example.com", website="https://spam.example")
    assert bot.status_code == real.status_code == 200
    assert bot.content == real.content
    assert not site.mail.messages
    with pytest.raises(NotFoundError):
        site.store.subscriber_by_email("bot@example.com")


def test_one_hundred_sign_ups_from_one_address_trip_the_limiter(site: Site) -> None:
    token = site.csrf()
    codes = [
        site.client.post(
            "/subscribe", data={"csrf_token": token, "email": f"r{n}@example.com", "list": "daily"}
        ).status_code
        for n in range(100)
    ]
    limit = site.settings.web.signups_per_ip_per_hour
    assert codes[:limit] == [200] * limit
    assert set(codes[limit:]) == {429}
    assert len(site.mail.messages) == limit
    assert all(len(m.recipients) == 1 for m in site.mail.messages)


def test_one_address_gets_few_confirmations(site: Site) -> None:
    codes = [site.sign_up("target@example.com").status_code for _ in range(6)]
    assert codes == [200] * 6  # nothing tells the sender that mail stopped
    assert len(site.mail.messages) == site.settings.web.signups_per_address_per_hour


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "a@b.c, evil@x.y"}, "valid email address"),
        ({"email": "x\r\nBcc: evil@example.com@example.com"}, "valid email address"),
        ({"list": "nonexistent"}, "choose at least one"),
        ({"email": "ok@example.com\n"}, "valid email address"),
        ({"list": "daily\n"}, "choose at least one"),
    ],
    ids=["two-addresses", "header-injection", "unknown-list", "address-newline", "list-newline"],
)
def test_bad_sign_up_shows_the_form_again(site: Site, fields: dict[str, str], message: str) -> None:
    form = {"csrf_token": site.csrf(), "email": "ok@example.com", "list": "daily", **fields}
    response = site.client.post("/subscribe", data=form)
    assert response.status_code == 400 and message in response.text.lower()
    assert not site.mail.messages


# -- one-click unsubscribe (RFC 8058) ----------------------------------------------------------


@pytest.mark.parametrize("multipart", [False, True], ids=["urlencoded", "multipart"])
def test_one_click_post_unsubscribes_with_200_and_no_redirect(site: Site, multipart: bool) -> None:
    url = f"/u/daily/{token_for(site.settings, site.store, READER, 'daily')}"
    if multipart:
        response = site.client.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    else:
        response = site.client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "location" not in response.headers and "set-cookie" not in response.headers
    assert status_of(site.store, READER, "daily") == "unsubscribed"
    assert status_of(site.store, READER, "weekly") == "active"  # one list only
    again = site.client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200 and again.content == response.content


def test_get_shows_a_button_and_changes_nothing(site: Site) -> None:
    url = f"/u/daily/{token_for(site.settings, site.store, READER, 'daily')}"
    page = site.client.get(url)
    assert page.status_code == 200
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page.text
    assert status_of(site.store, READER, "daily") == "active"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"


def test_a_mail_program_gets_identical_answers_for_known_and_unknown_tokens(site: Site) -> None:
    good = token_for(site.settings, site.store, READER, "daily")
    other_list = token_for(site.settings, site.store, READER, "weekly")
    flipped = altered(good)
    strangers = [flipped, other_list, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x" * 600]
    answers = set()
    for token in [good, *strangers]:
        response = site.client.post(f"/u/daily/{token}", data={"List-Unsubscribe": "One-Click"})
        headers = {k: v for k, v in response.headers.items() if k != "date"}
        answers.add((response.status_code, response.content, tuple(sorted(headers.items()))))
    assert len(answers) == 1  # RFC 8058's POST: nothing to learn from the answer
    assert status_of(site.store, READER, "weekly") == "active"


def test_a_person_with_a_broken_link_is_told_so_and_nothing_changes(site: Site) -> None:
    good = token_for(site.settings, site.store, READER, "daily")
    cut = good[: len(good) // 2]  # a mail program wrapped the link in two
    for token in (cut, altered(good)):
        page = site.client.get(f"/u/daily/{token}")
        assert page.status_code == 404 and "incomplete or was changed" in page.text
        assert "<form" not in page.text and page.headers["cache-control"] == "no-store"
        pressed = site.client.post(
            f"/u/daily/{token}", data={"List-Unsubscribe": "One-Click", "via": "page"}
        )
        assert pressed.status_code == 404 and "incomplete or was changed" in pressed.text
    assert status_of(site.store, READER, "daily") == "active"
    assert site.client.get(f"/u/daily/{good}").status_code == 200  # the whole link still works


def test_post_without_one_click_body_changes_nothing(site: Site) -> None:
    url = f"/u/daily/{token_for(site.settings, site.store, READER, 'daily')}"
    assert site.client.post(url, data={"unsubscribe": "yes"}).status_code == 400
    assert status_of(site.store, READER, "daily") == "active"


def test_links_signed_with_a_retired_key_still_work(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int], seeded_templates: SeededTemplates
) -> None:
    site = make_site(tmp_path, smtp_server, seeded_templates)
    reader = site.store.subscriber_by_email(READER)
    old = unsubscribe_token(secret=b"retired", key_id=0, subscriber_id=reader.id, list_slug="daily")
    rotated = site.settings.model_copy(
        update={
            "site": site.settings.site.model_copy(
                update={"previous_unsubscribe_secrets": {0: SecretStr("retired")}}
            )
        }
    )
    client = TestClient(create_app(rotated, clock=lambda: NOW))
    client.post(f"/u/daily/{old}", data={"List-Unsubscribe": "One-Click"})
    assert status_of(site.store, READER, "daily") == "unsubscribed"


def test_one_click_with_forged_tokens_is_rate_limited_per_ip(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int], seeded_templates: SeededTemplates
) -> None:
    site = make_site(tmp_path, smtp_server, seeded_templates, unsubscribes_per_ip_per_minute=3)
    token = token_for(site.settings, site.store, READER, "daily")
    codes = [
        site.client.post(f"/u/daily/{forged}", data={"List-Unsubscribe": "One-Click"}).status_code
        for forged in ("abc", token[:-2], f"{token}x", "abc", "abc")
    ]
    assert codes == [200, 200, 200, 429, 429]
    # Over the limit for forgeries, the address may still post a genuine token.
    genuine = site.client.post(f"/u/daily/{token}", data={"List-Unsubscribe": "One-Click"})
    assert genuine.status_code == 200
    assert status_of(site.store, READER, "daily") == "unsubscribed"


def test_a_mailbox_provider_posts_for_many_readers_from_one_ip(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int], seeded_templates: SeededTemplates
) -> None:
    readers = 400
    site = make_site(tmp_path, smtp_server, seeded_templates)  # 300 a minute per IP
    add_subscribers(site.store.engine, readers, now=NOW)
    emails = [f"reader{i}@example.com" for i in range(readers)]
    codes = [
        site.client.post(
            f"/u/daily/{token_for(site.settings, site.store, email, 'daily')}",
            data={"List-Unsubscribe": "One-Click"},
        ).status_code
        for email in emails
    ]
    assert codes == [200] * readers
    assert {status_of(site.store, email, "daily") for email in emails} == {"unsubscribed"}
    forged = site.client.post("/u/daily/abc", data={"List-Unsubscribe": "One-Click"})
    assert forged.status_code == 200  # genuine tokens did not use up the forgeries' allowance


# -- preferences -------------------------------------------------------------------------------


def test_preferences_store_lists_and_sections(site: Site) -> None:
    reader = site.store.subscriber_by_email(READER)
    url = f"/preferences/{_prefs_token(site, reader.id)}"
    page = site.client.get(url)
    assert page.status_code == 200 and READER in page.text
    assert 'name="section:business" value="Technology" checked' in page.text
    form = {
        "csrf_token": CSRF_INPUT.search(page.text).group(1),  # type: ignore[union-attr]
        "list": ["daily", "business"],
        "section:business": ["Technology"],
        "section:daily": [],
    }
    saved = site.client.post(url, data=form)
    assert saved.status_code == 200 and "saved" in saved.text
    mine = site.store.subscriptions_of(reader.id)
    assert mine["business"][:2] == ("active", ("Technology",))
    assert mine["daily"][:2] == ("active", None)
    assert mine["weekly"][0] == "unsubscribed"
    assert site.client.post(url, data={"list": ["weekly"]}).status_code == 403
    assert site.store.subscriptions_of(reader.id)["weekly"][0] == "unsubscribed"
    assert site.client.get("/preferences/forged").status_code == 404


def _prefs_token(site: Site, subscriber_id: int) -> str:
    from digest.operations.readers import Subscriptions

    return Subscriptions(site.settings, site.store).preferences_token(subscriber_id)


# -- archive and editor preview ----------------------------------------------------------------


def test_archive_shows_sent_editions_with_neutral_slots(site: Site) -> None:
    day = NOW.date().isoformat()
    assert site.client.get(f"/archive/daily/{day}").status_code == 404  # not sent yet
    site.publisher.send("daily", now=NOW)
    index = site.client.get("/archive/daily")
    assert index.status_code == 200 and f'href="/archive/daily/{day}"' in index.text
    page = site.client.get(f"/archive/daily/{day}")
    assert page.status_code == 200
    assert "Dear reader," in page.text
    assert f'href="{BASE}/unsubscribe"' in page.text
    assert "xdigestslot" not in page.text and "/u/daily/" not in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    assert site.client.get("/unsubscribe").status_code == 200
    assert site.client.get("/archive/daily/2026-3-2").status_code == 404
    assert site.client.get("/archive/nope").status_code == 404


@pytest.mark.parametrize(
    ("how", "code"),
    [
        ({}, 403),
        ({"headers": {"X-Editor-Token": "wrong"}}, 403),
        ({"params": {"token": EDITOR_TOKEN[:-1]}}, 403),
        ({"headers": {"X-Editor-Token": EDITOR_TOKEN}}, 200),
        ({"headers": {"Authorization": f"Bearer {EDITOR_TOKEN}"}}, 200),
        ({"params": {"token": EDITOR_TOKEN}}, 200),
    ],
    ids=["none", "wrong-header", "wrong-query", "header", "bearer", "query"],
)
def test_editor_preview_needs_the_token_and_records_nothing(
    site: Site, how: dict[str, Any], code: int
) -> None:
    before = site.store.editions_with_counts()
    response = site.client.get("/editor/preview/daily", **how)
    assert response.status_code == code
    if code == 200:
        assert "Dear reader," in response.text and "xdigestslot" not in response.text
        assert response.headers["x-digest-edition"] == f"draft {NOW.date()}"
        assert response.headers["cache-control"] == "no-store"
    assert site.store.editions_with_counts() == before == []


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("9999-12-31T23:59:59+00:00", "must lie in the years"),
        ("0001-01-01T00:00:00+00:00", "must lie in the years"),
        ("garbage", "is not an ISO date-time"),
        ("2026-03-02T07:00", "needs a time zone"),
    ],
    ids=["far-future", "far-past", "garbage", "no-zone"],
)
def test_editor_preview_refuses_a_bad_moment_saying_why(site: Site, at: str, message: str) -> None:
    response = site.client.get(
        "/editor/preview/daily", params={"at": at}, headers={"X-Editor-Token": EDITOR_TOKEN}
    )
    assert response.status_code == 400
    assert message in response.text


def test_editor_preview_is_off_without_a_configured_token(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int], seeded_templates: SeededTemplates
) -> None:
    site = make_site(tmp_path, smtp_server, seeded_templates, editor_token=SecretStr(""))
    assert site.client.get("/editor/preview/daily", params={"token": ""}).status_code == 403


def test_every_page_sends_the_security_headers(site: Site) -> None:
    for path in ("/", "/subscribe", "/archive", "/archive/daily", "/unsubscribe", "/missing"):
        response = site.client.get(path)
        assert "script-src" not in response.headers["content-security-policy"], path
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["x-content-type-options"] == "nosniff", path
