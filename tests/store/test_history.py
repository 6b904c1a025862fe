"""Per-edition totals for the desk's history and live pages, on SQLite and PostgreSQL: a
ledger with known states, bounces, complaints and unsubscribes gives exactly its counts."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert

from digest.models import (
    DeliveryState,
    Edition,
    EditionStatus,
    SubscriptionStatus,
    UnsubscribeChannel,
)
from digest.operations import watching
from digest.store import Enrolment, Outcome, Store
from digest.store.schema import bounce_events, complaints, make_engine, upgrade
from tests.conftest import NOW

PAGE = UnsubscribeChannel.PAGE
PEOPLE = [f"reader{n:02d}@example.hu" for n in range(1, 13)]  # subscriber ids 1-12


@pytest.fixture
def store(database_url: str) -> Store:
    engine = make_engine(database_url)
    upgrade(engine, now=NOW)
    store = Store(engine)
    store.sync_lists([("daily", "Daily")], now=NOW)
    people = [Enrolment(email, "", "", "", SubscriptionStatus.ACTIVE) for email in PEOPLE]
    store.enrol(people, "daily", now=NOW)
    return store


def edition_with(store: Store, day: int, states: dict[int, DeliveryState]) -> Edition:
    """Edition `day`, queued to every active reader, each subscriber id ending in `states`
    (the rest left queued)."""
    at = NOW + timedelta(days=day)
    edition, _ = store.create_edition(
        list_slug="daily",
        edition_date=at.date(),
        now=at,
        cutoff=at,
        subject=f"Daily {day}",
        html="<p>x</p>",
        text="x",
        article_ids=[],
        slot_nonce=f"n{day}",
    )
    store.queue_deliveries(edition, message_id=lambda sid: f"<{day}.{sid}@x>", now=at)
    claims = store.claim(edition, owner="t", limit=100, lease=timedelta(minutes=5), now=at)
    outcomes = [
        Outcome(c.edition_id, c.subscriber.id, states[c.subscriber.id], f"reply {c.subscriber.id}")
        for c in claims
        if c.subscriber.id in states
    ]
    store.record(outcomes, owner="t", now=at)
    store.release([c for c in claims if c.subscriber.id not in states], owner="t", now=at)
    return edition


def reader_event(
    store: Store, table: object, key: str, subscriber_id: int, edition_id: int
) -> None:
    row = {
        "key": key,
        "source": "test",
        "subscriber_id": subscriber_id,
        "edition_id": edition_id,
        "effect": "suppressed",
        "processed_at": NOW,
    }
    if table is bounce_events:
        row |= {"recipient": PEOPLE[subscriber_id - 1], "kind": "hard", "status": "5.1.1"}
    else:
        row |= {
            "feedback_type": "abuse",
            "user_agent": "t",
            "reported_domain": "x",
            "named_by": "verp",
        }
    with store.engine.begin() as tx:
        tx.execute(insert(table), [row])  # type: ignore[arg-type]


def test_history_counts_each_edition_by_state_and_by_what_readers_did(store: Store) -> None:
    sent, failed, deferred = DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.DEFERRED
    first = edition_with(
        store,
        1,
        {1: sent, 2: sent, 3: sent, 4: sent, 5: sent, 6: sent, 7: failed, 8: failed, 9: deferred},
    )  # 10-12 stay queued
    # Two bounce reports about reader 7 count once; one about reader 8.
    reader_event(store, bounce_events, "b1", 7, first.id)
    reader_event(store, bounce_events, "b2", 7, first.id)
    reader_event(store, bounce_events, "b3", 8, first.id)
    reader_event(store, complaints, "c1", 1, first.id)
    # Reader 2 leaves after the first edition; reader 3 receives the second, then leaves.
    store.unsubscribe(2, "daily", channel=PAGE, now=NOW + timedelta(days=1, hours=2))
    second = edition_with(store, 2, {i: sent for i in (1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)})
    store.unsubscribe(3, "daily", channel=PAGE, now=NOW + timedelta(days=2, hours=2))

    totals = {row.edition_id: row for row in watching.history(store)}

    one, two = totals[first.id], totals[second.id]
    assert (one.state(sent), one.state(failed), one.state(deferred)) == (6, 2, 1)
    assert one.state(DeliveryState.QUEUED) == 3
    assert (one.bounced, one.complained, one.unsubscribed) == (2, 1, 1)
    assert (two.state(sent), two.state(failed), two.bounced, two.complained) == (11, 0, 0, 0)
    assert two.unsubscribed == 1
    assert [row.edition_id for row in watching.history(store)] == [second.id, first.id]


def test_the_live_view_counts_the_last_minute_and_lists_the_refusals(store: Store) -> None:
    edition = edition_with(
        store, 1, {1: DeliveryState.SENT, 2: DeliveryState.SENT, 3: DeliveryState.FAILED}
    )
    at = NOW + timedelta(days=1)
    view = watching.live_view(store, edition.id, now=at + timedelta(seconds=30))
    assert view.counts == {"sent": 2, "failed": 1, "queued": 9}
    assert view.per_minute == 2
    assert view.eta_seconds == 9 * 60 // 2
    assert [(r.email, r.state, r.reply) for r in view.refusals] == [
        (PEOPLE[2], "failed", "reply 3")
    ]
    later = watching.live_view(store, edition.id, now=at + timedelta(minutes=5))
    assert later.per_minute == 0 and later.eta_seconds is None


def test_pause_resume_and_retry_do_what_the_commands_do(store: Store) -> None:
    edition = edition_with(store, 1, {1: DeliveryState.SENT, 2: DeliveryState.FAILED})
    store.set_edition_status(edition.id, EditionStatus.SENDING)
    watching.pause(store, edition.id)
    assert store.edition_by_id(edition.id).status == EditionStatus.PAUSED
    watching.resume(store, edition.id)
    assert store.edition_by_id(edition.id).status == EditionStatus.SENDING
    assert watching.retry_failed(store, edition.id, now=NOW + timedelta(days=1)) == 1
    assert store.delivery_counts(edition.id).get("failed", 0) == 0


def test_subscriber_search_matches_a_part_of_the_address_only(store: Store) -> None:
    found = store.search_subscribers("READER1")
    assert [email for _, email, _ in found] == PEOPLE[9:12]
    assert store.search_subscribers("%") == []
    assert store.search_subscribers("_") == []


def test_dates_are_timezone_aware(store: Store) -> None:
    edition = edition_with(store, 1, {1: DeliveryState.SENT})
    (line,) = store.deliveries_of(1)
    assert line.edition_id == edition.id and isinstance(line.sent_at, datetime)
    assert line.sent_at.utcoffset() == timedelta(0)
