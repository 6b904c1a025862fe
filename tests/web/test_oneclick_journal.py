"""A one-click POST while another connection holds the database's write lock: answered 200
at once, journaled, applied once the database takes writes, and the reader is not sent to."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from starlette.testclient import TestClient

from digest.models import UnsubscribeChannel
from digest.operations.journal import UnsubscribeJournal
from digest.operations.publisher import Publisher
from digest.operations.readers import Subscriptions
from digest.web import create_app
from tests.conftest import NOW, RecordingHandler, SeededTemplates
from tests.support.web import CSRF_INPUT, status_of, token_for, web_settings

READER = "odon.gyori@example.hu"  # a seeded reader, active on daily
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def publisher(
    tmp_path: Path,
    smtp_server: tuple[RecordingHandler, int],
    database_url: str,
    seeded_templates: SeededTemplates,
) -> Publisher:
    settings = web_settings(
        tmp_path, smtp_server[1], "http://testserver", database_url=database_url
    )
    seeded_templates.copy_into(settings)
    return Publisher(settings)


def hold_the_write_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction that blocks every other write to subscriptions."""
    with engine.connect() as connection, connection.begin() as tx:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("LOCK TABLE subscriptions IN EXCLUSIVE MODE")
        else:  # BEGIN IMMEDIATE already took SQLite's one write lock; write to be sure
            connection.execute(text("UPDATE lists SET name = name"))
        yield connection
        tx.rollback()


def send_and_find_the_reader_gone(publisher: Publisher, handler: RecordingHandler) -> None:
    """The next send applies the journal first: the reader is unsubscribed and not sent to."""
    publisher.send("daily", now=NOW)
    assert status_of(publisher.store, READER, "daily") == "unsubscribed"
    assert UnsubscribeJournal(publisher.settings.unsubscribe_journal).pending() == []
    assert handler.messages and not handler.for_address(READER)


def test_a_post_during_a_held_write_lock_is_journaled_and_never_sent_to(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    store, journal = publisher.store, UnsubscribeJournal(publisher.settings.unsubscribe_journal)
    url = f"/u/daily/{token_for(publisher.settings, store, READER, 'daily')}"
    subscriber = store.subscriber_by_email(READER).id
    with TestClient(create_app(publisher.settings, clock=lambda: NOW)) as client:
        locks = hold_the_write_lock(publisher.store.engine)
        next(locks)
        began = time.monotonic()
        response = client.post(url, data=ONE_CLICK)
        took = time.monotonic() - began
        assert response.status_code == 200 and took < 2, took
        assert (subscriber, "daily", UnsubscribeChannel.ONE_CLICK) in journal.pending()
        next(locks, None)  # the lock is released
    send_and_find_the_reader_gone(publisher, smtp_server[0])


def test_a_preferences_save_during_a_held_write_lock_journals_the_lists_left(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    store, journal = publisher.store, UnsubscribeJournal(publisher.settings.unsubscribe_journal)
    subscriber = store.subscriber_by_email(READER).id
    url = f"/preferences/{Subscriptions(publisher.settings, store).preferences_token(subscriber)}"
    with TestClient(create_app(publisher.settings, clock=lambda: NOW)) as client:
        page = client.get(url)
        csrf = CSRF_INPUT.search(page.text)
        assert page.status_code == 200 and csrf is not None
        locks = hold_the_write_lock(publisher.store.engine)
        next(locks)
        began = time.monotonic()
        response = client.post(url, data={"csrf_token": csrf.group(1), "list": ["weekly"]})
        took = time.monotonic() - began
        assert response.status_code == 200 and took < 2, took
        daily = publisher.settings.list("daily").name
        assert f"no longer receive {daily}" in response.text
        assert (subscriber, "daily", UnsubscribeChannel.PAGE) in journal.pending()
        assert not [r for r in journal.pending() if r[1] == "weekly"]
        next(locks, None)  # the lock is released
    send_and_find_the_reader_gone(publisher, smtp_server[0])


def test_delivery_applies_the_journal_before_it_claims(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    store = publisher.store
    UnsubscribeJournal(publisher.settings.unsubscribe_journal).append(
        [(store.subscriber_by_email(READER).id, "daily", UnsubscribeChannel.ONE_CLICK)]
    )  # as the web process left it: journaled, the database never written
    assert status_of(store, READER, "daily") == "active"
    send_and_find_the_reader_gone(publisher, smtp_server[0])


def test_digest_web_applies_what_an_earlier_process_journaled_when_it_starts(
    publisher: Publisher,
) -> None:
    store = publisher.store
    journal = UnsubscribeJournal(publisher.settings.unsubscribe_journal)
    journal.append([(store.subscriber_by_email(READER).id, "daily", UnsubscribeChannel.ONE_CLICK)])
    app = create_app(publisher.settings, clock=lambda: NOW)
    assert status_of(store, READER, "daily") == "active"  # made, not yet started
    with TestClient(app):
        assert status_of(store, READER, "daily") == "unsubscribed"
    assert journal.pending() == []
