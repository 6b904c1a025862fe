"""Unsubscribes by channel, end to end: a real send, then readers leave by the mail client's
one-click POST (RFC 8058), by the unsubscribe link's page, by the preferences page, and by
the publisher's command; `digest stats --json`, its CSV and the desk split them."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from digest.config import Settings
from digest.models import UnsubscribeChannel
from digest.operations.journal import UnsubscribeJournal
from digest.operations.stats import edition_stats
from digest.store.schema import unsubscribes
from tests.conftest import DIGEST_READER, RecordingHandler, SeededTemplates
from tests.support.cli import run
from tests.support.web import CSRF_INPUT
from tests.web.test_clicks import Sent, send
from tests.web.test_oneclick_journal import hold_the_write_lock

RFC_8058 = {"List-Unsubscribe": "One-Click"}
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
PREFERENCES = re.compile(r"https://[^\s\"<>]+/preferences/[A-Za-z0-9_-]+")


@pytest.fixture
def sent(
    settings: Settings,
    seeded_templates: SeededTemplates,
    smtp_server: tuple[RecordingHandler, int],
) -> Sent:
    return send(settings, seeded_templates, smtp_server[0])


def readers(sent: Sent, count: int) -> list[str]:
    """`count` recipients of the send, the seeded reader first."""
    others = sorted({r for m in sent.handler.messages for r in m.recipients} - {DIGEST_READER})
    return [DIGEST_READER, *others][:count]


def unsubscribe_path(sent: Sent, address: str) -> str:
    """The https half of the reader's List-Unsubscribe header, as a path."""
    (received,) = sent.handler.for_address(address)
    https = received.message["List-Unsubscribe"].split(",")[0].strip().strip("<>")
    return urlsplit(https).path


def preferences_path(sent: Sent, address: str) -> str:
    (received,) = sent.handler.for_address(address)
    text = received.message.get_body(("plain",))
    assert text is not None
    found = PREFERENCES.search(text.get_content())
    assert found is not None
    return urlsplit(found[0]).path


def leave_by_page(client: TestClient, url: str) -> None:
    """Open the unsubscribe link as a person does and press its button: the page's form."""
    page = client.get(url)
    assert page.status_code == 200
    fields = dict(HIDDEN.findall(page.text))
    assert fields["List-Unsubscribe"] == "One-Click"
    assert client.post(url, data=fields).status_code == 200


def leave_by_preferences(client: TestClient, url: str, list_slug: str) -> None:
    """Untick the list on the preferences page and save."""
    page = client.get(url)
    found = CSRF_INPUT.search(page.text)
    assert found is not None
    kept = re.findall(r'name="list" value="([^"]+)" checked', page.text)
    assert list_slug in kept
    form = {"csrf_token": found[1], "list": [s for s in kept if s != list_slug]}
    assert client.post(url, data=form).status_code == 200


def test_unsubscribes_are_split_by_one_click_and_page_and_credited_to_the_edition(
    sent: Sent, tmp_path: Path
) -> None:
    one_click, page, preferences, removed = readers(sent, 4)
    with sent.client() as client:
        answer = client.post(unsubscribe_path(sent, one_click), data=RFC_8058)
        assert answer.status_code == 200
        leave_by_page(client, unsubscribe_path(sent, page))
        leave_by_preferences(client, preferences_path(sent, preferences), "daily")
    env = {"DIGEST_DATABASE_URL": sent.settings.database_url}
    done = run("subscribers", "remove", removed, "--list", "daily", env=env)
    assert done.returncode == 0, done.stderr

    shown = run("stats", str(sent.edition.id), "--json", "--csv", str(tmp_path / "e.csv"), env=env)
    assert shown.returncode == 0, shown.stderr
    numbers = json.loads(shown.stdout)
    assert (numbers["unsubscribes"], numbers["unsubscribes_one_click"]) == (4, 1)
    assert numbers["unsubscribes_page"] == 2
    delivered = numbers["delivered"]
    assert numbers["rates"]["unsubscribes_page"] == round(2 / delivered, 6)
    with (tmp_path / "e.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert {
        (r["unsubscribes"], r["unsubscribes_one_click"], r["unsubscribes_page"]) for r in rows
    } == {("4", "1", "2")}
    table = run("stats", str(sent.edition.id), env=env)
    assert re.search(r"by one-click\s+1\s", table.stdout), table.stdout
    assert re.search(r"by page\s+2\s", table.stdout), table.stdout


def test_a_journaled_one_click_counts_as_one_click_of_the_edition(sent: Sent) -> None:
    first, second = readers(sent, 2)
    journal = UnsubscribeJournal(sent.settings.unsubscribe_journal)
    with sent.client() as client:
        locks = hold_the_write_lock(sent.store.engine)
        next(locks)
        assert client.post(unsubscribe_path(sent, first), data=RFC_8058).status_code == 200
        assert [via for _, _, via in journal.pending()] == [UnsubscribeChannel.ONE_CLICK]
        next(locks, None)
        # The next write that succeeds applies what waited in the journal.
        assert client.post(unsubscribe_path(sent, second), data=RFC_8058).status_code == 200
    assert journal.pending() == []
    numbers = edition_stats(sent.store, sent.edition)
    assert (numbers.unsubscribes, numbers.unsubscribes_one_click) == (2, 2)
    with sent.store.engine.connect() as connection:
        credited = connection.execute(select(unsubscribes.c.edition_id)).scalars().all()
    assert credited == [sent.edition.id, sent.edition.id]


def test_leaving_twice_is_counted_once(sent: Sent) -> None:
    (reader,) = readers(sent, 1)
    with sent.client() as client:
        for _ in range(2):
            assert client.post(unsubscribe_path(sent, reader), data=RFC_8058).status_code == 200
        leave_by_page(client, unsubscribe_path(sent, reader))
    numbers = edition_stats(sent.store, sent.edition)
    assert (numbers.unsubscribes, numbers.unsubscribes_one_click, numbers.unsubscribes_page) == (
        1,
        1,
        0,
    )
