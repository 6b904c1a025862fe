"""Every store method that only reads answers while another connection is in the middle of a
write (on SQLite: holds the write lock, as a send does while it commits a group of outcomes),
with the committed state; on PostgreSQL the same reads work unchanged. Every other method is
listed as a write, so a method added later has to be put on one side or the other."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from digest.errors import StoreError
from digest.models import Edition, EditionStatus
from digest.store import Store
from digest.store.schema import make_engine
from tests.conftest import NOW, SeededTemplates
from tests.support.databases import BACKENDS, PostgresServer
from tests.support.locking import database_of, sent_install, write_lock_held

READER = "odon.gyori@example.hu"
EDITOR = "editor@budapestpost.example"
WEEK = timedelta(days=7)
# A read that waited for the lock fails after this, not after the configured 15 s.
IMPATIENT_MS = 200


@dataclass(frozen=True)
class Facts:
    """A store on a sent install, and the ids its reads are asked about."""

    store: Store
    edition: Edition
    subscriber_id: int
    editor_id: int
    database: Path | None  # the SQLite file; None on PostgreSQL


def _impatient(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute(f"PRAGMA busy_timeout={IMPATIENT_MS}")


@pytest.fixture(scope="module", params=BACKENDS, ids=BACKENDS)
def facts(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    seeded_templates: SeededTemplates,
) -> Iterator[Facts]:
    server: PostgresServer | None = None
    url = None
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        url = server.create()
    try:
        settings = sent_install(
            tmp_path_factory.mktemp("reads"), seeded_templates, database_url=url
        )
        engine = make_engine(settings.database_url)
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            event.listen(engine, "connect", _impatient)  # after make_engine's 15 s
        store = Store(engine)
        editor_id = store.add_editor(EDITOR, "not a hash: never checked here", now=NOW)
        (edition,) = [summary.edition for summary in store.editions_with_counts()]
        yield Facts(
            store=store,
            edition=edition,
            subscriber_id=store.subscriber_by_email(READER).id,
            editor_id=editor_id,
            database=database_of(settings) if sqlite else None,
        )
        engine.dispose()
    finally:
        if server is not None and url is not None:
            server.drop(url)


@contextmanager
def writer_busy(facts: Facts) -> Iterator[None]:
    """Another connection in the middle of a write to every ledger row, not committed."""
    if facts.database is not None:
        with write_lock_held(facts.database):
            yield
        return
    with facts.store.engine.connect() as other, other.begin() as tx:
        other.execute(text("UPDATE deliveries SET state = 'sending'"))
        yield
        tx.rollback()


READS: dict[str, Callable[[Facts], object]] = {
    "active_subscribers": lambda f: f.store.active_subscribers("daily"),
    "all_editors": lambda f: f.store.all_editors(),
    "archived_edition": lambda f: f.store.archived_edition("daily", f.edition.edition_date),
    "archived_editions": lambda f: f.store.archived_editions("daily"),
    "article_sections": lambda f: f.store.article_sections(since=NOW - WEEK),
    "articles_by_id": lambda f: f.store.articles_by_id(f.edition.article_ids),
    "articles_published": lambda f: f.store.articles_published(after=NOW - WEEK, until=NOW),
    "bounce_counts": lambda f: f.store.bounce_counts(f.edition.id),
    "bounces_of": lambda f: f.store.bounces_of(f.subscriber_id),
    "claim_holders": lambda f: f.store.claim_holders(since=NOW - WEEK),
    "click_counts": lambda f: f.store.click_counts(f.edition.id),
    "complaint_count": lambda f: f.store.complaint_count(f.edition.id),
    "delivered_at": lambda f: f.store.delivered_at(f.edition.id, f.subscriber_id),
    "deliveries": lambda f: f.store.deliveries(f.edition.id),
    "deliveries_of": lambda f: f.store.deliveries_of(f.subscriber_id),
    "delivery_counts": lambda f: f.store.delivery_counts(f.edition.id),
    "delivery_times": lambda f: f.store.delivery_times([(f.edition.id, f.subscriber_id)]),
    "due_count": lambda f: f.store.due_count(f.edition, now=NOW),
    "edition_by_id": lambda f: f.store.edition_by_id(f.edition.id),
    "edition_candidates": lambda f: f.store.edition_candidates(
        published_after=NOW - WEEK, seen_after=NOW - WEEK, oldest=NOW - WEEK, until=NOW
    ),
    "edition_for": lambda f: f.store.edition_for("daily", f.edition.edition_date),
    "edition_note": lambda f: f.store.edition_note("daily", f.edition.edition_date),
    "edition_shape": lambda f: f.store.edition_shape("daily", f.edition.edition_date),
    "edition_status": lambda f: f.store.edition_status(f.edition.id),
    "edition_totals": lambda f: f.store.edition_totals(),
    "editions_due": lambda f: f.store.editions_due(now=NOW, since=NOW - WEEK),
    "editions_with_counts": lambda f: f.store.editions_with_counts(),
    "editor_by_email": lambda f: f.store.editor_by_email(EDITOR),
    "editor_by_id": lambda f: f.store.editor_by_id(f.editor_id),
    "feed_article_counts": lambda f: f.store.feed_article_counts(["bp"]),
    "feed_polls": lambda f: f.store.feed_polls(),
    "feed_validators": lambda f: f.store.feed_validators("https://budapestpost.example/feed"),
    "last_run": lambda f: f.store.last_run("daily", by_hand=True),
    "latest_edition": lambda f: f.store.latest_edition("daily"),
    "recent_refusals": lambda f: f.store.recent_refusals(f.edition.id),
    "recent_runs": lambda f: f.store.recent_runs(),
    "search_subscribers": lambda f: f.store.search_subscribers("gyori"),
    "sending_owners": lambda f: f.store.sending_owners(f.edition.id),
    "sent_article_ids": lambda f: f.store.sent_article_ids("daily", since=NOW - WEEK),
    "sent_between": lambda f: f.store.sent_between(
        f.edition.id, since=NOW - WEEK, until=NOW + 520 * WEEK
    ),
    "skipped_editions": lambda f: f.store.skipped_editions(limit=5),
    "stored_feed_images": lambda f: f.store.stored_feed_images(
        [(article_id, "https://budapestpost.example/x") for article_id in f.edition.article_ids]
    ),
    "subscriber_by_email": lambda f: f.store.subscriber_by_email(READER),
    "subscriber_by_id": lambda f: f.store.subscriber_by_id(f.subscriber_id),
    "subscription_rows": lambda f: list(f.store.subscription_rows(list_slug="daily", page=7)),
    "subscription_sections": lambda f: f.store.subscription_sections(f.subscriber_id, "daily"),
    "subscription_status": lambda f: f.store.subscription_status(f.subscriber_id, "daily"),
    "subscriptions_of": lambda f: f.store.subscriptions_of(f.subscriber_id),
    "undecided_editions": lambda f: f.store.undecided_editions("daily", since=NOW - WEEK),
    "unqueued_count": lambda f: f.store.unqueued_count(f.edition),
    "unsubscribe_counts": lambda f: f.store.unsubscribe_counts(f.edition.id),
    "verdict_for": lambda f: f.store.verdict_for(f.edition.id),
}

# Each takes the write lock when it begins, by design.
WRITES = {
    "add_editor",
    "apply_bounce",
    "apply_complaint",
    "claim",
    "create_edition",
    "end_sessions",
    "enrol",
    "expire_leases",
    "mark_bounced",
    "queue_deliveries",
    "record",
    "record_clicks",
    "record_failed_sign_in",
    "record_feed_poll",
    "record_run",
    "record_sign_in",
    "record_verdict",
    "release",
    "remove_editor",
    "requeue_failed",
    "save_articles",
    "save_feed_articles",
    "set_edition_status",
    "set_note",
    "set_password_hash",
    "set_sections",
    "set_shape",
    "set_subscriber_name",
    "set_subscription_status",
    "subscribe",
    "sync_lists",
    "unsubscribe",
    "unsubscribe_all",
    "upsert_subscriber",
}


def test_every_store_method_is_a_read_or_a_write() -> None:
    public = {name for name, _ in inspect.getmembers(Store, inspect.isfunction)}
    public = {name for name in public if not name.startswith("_")}
    assert not set(READS) & WRITES
    assert public == set(READS) | WRITES


@pytest.mark.parametrize("name", list(READS), ids=list(READS))
def test_a_read_answers_the_committed_state_while_a_write_is_under_way(
    facts: Facts, name: str
) -> None:
    read = READS[name]
    before = read(facts)
    with writer_busy(facts):
        during = read(facts)
    assert during == before


@pytest.mark.parametrize("facts", ["sqlite"], indirect=True)  # PostgreSQL has no such lock
def test_a_write_still_waits_for_the_lock(facts: Facts) -> None:
    assert facts.database is not None
    with writer_busy(facts), pytest.raises(StoreError, match="database is locked"):
        facts.store.set_edition_status(facts.edition.id, EditionStatus.DONE)
