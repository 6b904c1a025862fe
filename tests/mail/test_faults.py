"""A relay that misbehaves: what the ledger records, and what the server really got.

Every test sends the seeded daily list through `FaultServer` (tests/faults.py) with one fault
scripted for one subscriber, and checks each address's ledger row and how many copies the server
stored per address and per Message-ID. Retries are driven by passing a later `now` to
Publisher.send, whose delivery clock starts at `now` (`_clock_from`), so nothing here sleeps.

Each test runs on SQLite and on PostgreSQL. The seeded database with the day's edition already
stored is built once per module and backend and copied for each test (a SQLite backup, a
PostgreSQL `CREATE DATABASE ... TEMPLATE`): rendering (CSS inlining) is most of a send's time,
and is not under test here.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from digest.errors import TransportError
from digest.mail.transport import Stage, free_port
from digest.models import DeliveryState, EditionStatus
from digest.operations.editions import draft_edition, edition_message_ids, store_edition
from digest.operations.publisher import Publisher, SendResult
from tests.conftest import NOW, settings_for
from tests.support.databases import PostgresServer, sqlite_url
from tests.support.faults import (
    Action,
    Fault,
    FaultServer,
    delay,
    drop,
    go_down,
    reply,
    reply_and_close,
)

VICTIM = "emma.clarke@example.com"  # on the daily and the weekly list, mid-way in id order
# The first retry waits 5 minutes minus or plus 10% jitter (RetryPolicy's defaults).
FIRST_RETRY = (timedelta(seconds=270), timedelta(seconds=330))
SOON = NOW + timedelta(minutes=1)  # before any first retry is due
LATER = NOW + timedelta(minutes=10)  # after every first retry is due

Rows = dict[str, dict[str, Any]]


class MakePublisher(Protocol):
    def __call__(self, port: int, *, timeout: float = 5.0, **delivery: Any) -> Publisher: ...


@dataclass
class Seeded:
    """Per backend, a database with the seeds and the daily edition of NOW stored, nothing
    queued yet; made on first use, then copied over each test's own database."""

    folder: Path
    server: PostgresServer | None = None
    template: str | None = None  # the PostgreSQL one's URL

    def _make(self, database_url: str) -> None:
        settings = settings_for(self.folder, free_port(), database_url=database_url)
        publisher = Publisher(settings)
        publisher.init(seed=True, now=NOW)
        draft = draft_edition(
            settings.site, publisher.store, publisher.renderer, settings.list("daily"), now=NOW
        )
        assert draft.selection
        store_edition(publisher.store, draft, now=NOW)
        publisher.store.engine.dispose()  # a template database must have no one connected

    def copy_into(self, database_url: str, server: PostgresServer | None) -> None:
        if server is None:
            source = self.folder / "digest.sqlite3"
            if not source.exists():
                self._make(sqlite_url(self.folder))
            with (
                closing(sqlite3.connect(source)) as original,
                closing(sqlite3.connect(str(make_url(database_url).database))) as target,
            ):
                original.backup(target)
            return
        if self.template is None:
            self.server, self.template = server, server.create()
            self._make(self.template)
        server.recreate(database_url, template=self.template)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    made = Seeded(tmp_path_factory.mktemp("seeded"))
    yield made
    if made.server is not None and made.template is not None:
        made.server.drop(made.template)


@pytest.fixture
def make_publisher(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str, seeded: Seeded
) -> MakePublisher:
    """A Publisher on this test's own copy of the seeded database, sending to `port`."""
    server: PostgresServer | None = (
        None if database_url.startswith("sqlite") else request.getfixturevalue("postgres_server")
    )

    def make(port: int, *, timeout: float = 5.0, **delivery: Any) -> Publisher:
        seeded.copy_into(database_url, server)
        base = settings_for(tmp_path, port, database_url=database_url)
        return Publisher(
            base.model_copy(
                update={
                    "smtp": base.smtp.model_copy(update={"timeout": timeout}),
                    "delivery": base.delivery.model_copy(update=delivery),
                }
            )
        )

    return make


@pytest.fixture
def relay() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def send(publisher: Publisher, at: datetime) -> tuple[SendResult, timedelta]:
    """Publisher.send at `at`, and how long it took in real time (the ledger clock runs from
    `at`)."""
    began = time.monotonic()
    result = publisher.send("daily", now=at)
    return result, timedelta(seconds=time.monotonic() - began)


def ledger(publisher: Publisher) -> Rows:
    edition = publisher.store.latest_edition("daily")
    assert edition is not None
    return {row["email"]: row for row in publisher.store.deliveries(edition.id)}


def edition_status(publisher: Publisher) -> EditionStatus:
    edition = publisher.store.latest_edition("daily")
    assert edition is not None
    return edition.status


def assert_first_retry(row: dict[str, Any], at: datetime, took: timedelta) -> None:
    """Retry scheduled one first backoff step after the run that failed (which began at `at`)."""
    assert row["attempts"] == 1
    assert at + FIRST_RETRY[0] <= row["next_attempt_at"] <= at + FIRST_RETRY[1] + took


def assert_everyone_else_sent_once(rows: Rows, server: FaultServer, victim: str) -> None:
    others = {email: row for email, row in rows.items() if email != victim}
    assert {email: row["state"] for email, row in others.items()} == dict.fromkeys(
        others, DeliveryState.SENT
    )
    assert all(row["attempts"] == 1 for row in others.values())
    copies = server.handler.per_address()
    assert {email: copies.get(email, 0) for email in others} == dict.fromkeys(others, 1)
    # The server holds each sent row's Message-ID once: the ledger and the server agree.
    by_id = server.handler.per_message_id()
    assert {row["message_id"]: by_id.get(row["message_id"], 0) for row in others.values()} == (
        dict.fromkeys((row["message_id"] for row in others.values()), 1)
    )


def is_active(publisher: Publisher, list_slug: str, email: str) -> bool:
    return email in {s.email for s in publisher.store.active_subscribers(list_slug)}


# -- a reply string at RCPT or after the final dot -------------------------------------------


@pytest.mark.parametrize(
    ("stage", "text", "state", "bounced"),
    [
        (Stage.RCPT, "451 4.3.0 Try again later", DeliveryState.DEFERRED, False),
        (Stage.RCPT, "452 4.5.3 Too many recipients", DeliveryState.DEFERRED, False),
        # RFC 5321 4.5.3.1.10: a 552 "too many recipients" at RCPT is treated as temporary.
        (Stage.RCPT, "552 5.5.3 Too many recipients", DeliveryState.DEFERRED, False),
        (Stage.RCPT, f"550 5.1.1 <{VICTIM}>: No such user", DeliveryState.FAILED, True),
        (Stage.RCPT, "554 5.7.1 Policy rejection", DeliveryState.FAILED, False),
        (Stage.DOT, "451 4.3.0 Try again later", DeliveryState.DEFERRED, False),
        (Stage.DOT, "550 5.1.1 No such user", DeliveryState.FAILED, True),
        (Stage.DOT, "554 5.7.1 Policy rejection", DeliveryState.FAILED, False),
        (Stage.DOT, "552 5.3.4 Message too big for system", DeliveryState.FAILED, False),
        pytest.param(
            Stage.RCPT,
            "450 Mailbox busy, try again later (relay 10.5.1.1)",
            DeliveryState.DEFERRED,
            False,
        ),
    ],
    ids=[
        "rcpt-451-4.3.0",
        "rcpt-452-4.5.3",
        "rcpt-552-5.5.3",
        "rcpt-550-5.1.1",
        "rcpt-554-5.7.1",
        "dot-451-4.3.0",
        "dot-550-5.1.1",
        "dot-554-5.7.1",
        "dot-552-5.3.4",
        "rcpt-450-ip-in-text",
    ],
)
def test_a_refusal_is_recorded_for_that_address_only(
    make_publisher: MakePublisher,
    relay: FaultServer,
    *,
    stage: Stage,
    text: str,
    state: DeliveryState,
    bounced: bool,
) -> None:
    publisher = make_publisher(relay.port)
    everyone = [s.email for s in publisher.store.active_subscribers("daily")]
    assert VICTIM in everyone and is_active(publisher, "weekly", VICTIM)
    relay.handler.script(VICTIM, stage, reply(text))

    result, took = send(publisher, NOW)

    rows = ledger(publisher)
    assert set(rows) == set(everyone)
    row = rows[VICTIM]
    assert (row["state"], row["last_reply"]) == (state, text)
    if state == DeliveryState.DEFERRED:
        assert_first_retry(row, NOW, took)
    else:
        assert (row["attempts"], row["next_attempt_at"]) == (1, None)
    assert relay.handler.copies(VICTIM) == []
    assert_everyone_else_sent_once(rows, relay, VICTIM)
    assert result.report.counts == {DeliveryState.SENT: len(everyone) - 1, state: 1}
    # Only a 5.1.x refusal (no such mailbox) stops mail to the address, on every list.
    assert is_active(publisher, "weekly", VICTIM) is not bounced
    assert is_active(publisher, "daily", VICTIM) is not bounced


# -- the server hangs up: with a 421, or without a word ----------------------------------------


@pytest.mark.parametrize(
    ("stage", "fault", "state", "last_reply", "stored"),
    [
        (Stage.RCPT, reply_and_close(), DeliveryState.DEFERRED, "421 4.4.2 Closing connection", 0),
        (Stage.DOT, reply_and_close(), DeliveryState.DEFERRED, "421 4.4.2 Closing connection", 0),
        (Stage.RCPT, drop(), DeliveryState.DEFERRED, "no reply at rcpt: ", 0),
        # The data arrived and was stored, but no reply came: the server may have it.
        (Stage.DOT, drop(), DeliveryState.UNKNOWN, "no reply at dot: ", 1),
    ],
    ids=["rcpt-421-close", "dot-421-close", "rcpt-drop", "dot-drop-after-data-stored"],
)
def test_a_hang_up_is_recorded_and_the_client_reconnects(
    make_publisher: MakePublisher,
    relay: FaultServer,
    *,
    stage: Stage,
    fault: Fault,
    state: DeliveryState,
    last_reply: str,
    stored: int,
) -> None:
    # One connection, so the order of sessions on the server is the order of the ledger.
    publisher = make_publisher(relay.port, connections=1)
    everyone = [s.email for s in publisher.store.active_subscribers("daily")]
    victim_at = everyone.index(VICTIM)
    assert 0 < victim_at < len(everyone) - 1
    relay.handler.script(VICTIM, stage, fault)

    result, took = send(publisher, NOW)

    rows = ledger(publisher)
    row = rows[VICTIM]
    assert row["state"] == state
    assert row["last_reply"].startswith(last_reply)
    assert_first_retry(row, NOW, took)
    assert len(relay.handler.copies(VICTIM)) == stored
    assert_everyone_else_sent_once(rows, relay, VICTIM)
    assert result.report.counts == {DeliveryState.SENT: len(everyone) - 1, state: 1}
    # The session that hung up carried everyone up to the victim and nothing after; one new
    # session carried the rest. (The engine's reachability probe greets but sends nothing.)
    busy = relay.handler.busy_sessions()
    assert [s.recipients for s in busy] == [everyone[: victim_at + 1], everyone[victim_at + 1 :]]
    assert [s.ended_by for s in busy] == [fault.action, None]


def test_no_reply_after_the_data_is_unknown_then_resent_with_the_same_message_id(
    make_publisher: MakePublisher, relay: FaultServer
) -> None:
    publisher = make_publisher(relay.port)
    everyone = [s.email for s in publisher.store.active_subscribers("daily")]
    relay.handler.script(VICTIM, Stage.DOT, drop(), times=1)

    _, took = send(publisher, NOW)
    row = ledger(publisher)[VICTIM]
    assert row["state"] == DeliveryState.UNKNOWN
    assert_first_retry(row, NOW, took)
    (first,) = relay.handler.copies(VICTIM)
    assert first.message_id == row["message_id"]
    assert edition_status(publisher) == EditionStatus.SENDING

    # Not yet due: nothing is sent again.
    early, _ = send(publisher, SOON)
    assert early.report.counts == {}
    assert ledger(publisher)[VICTIM]["state"] == DeliveryState.UNKNOWN
    assert len(relay.handler.messages) == len(everyone)

    # Due: the same message goes again, under the same Message-ID, and nobody else's does.
    retry, _ = send(publisher, LATER)
    assert retry.report.counts == {DeliveryState.SENT: 1}
    rows = ledger(publisher)
    row = rows[VICTIM]
    assert (row["state"], row["attempts"], row["next_attempt_at"]) == (
        DeliveryState.SENT,
        2,
        None,
    )
    copies = relay.handler.copies(VICTIM)
    assert [c.message_id for c in copies] == [row["message_id"]] * 2
    assert relay.handler.per_message_id()[row["message_id"]] == 2
    assert_everyone_else_sent_once(rows, relay, VICTIM)
    assert edition_status(publisher) == EditionStatus.DONE


def test_a_retry_after_the_secret_was_rotated_keeps_the_message_id_of_the_ledger(
    make_publisher: MakePublisher, relay: FaultServer
) -> None:
    publisher = make_publisher(relay.port)
    relay.handler.script(VICTIM, Stage.DOT, drop(), times=1)
    send(publisher, NOW)
    queued = ledger(publisher)[VICTIM]["message_id"]

    site = publisher.settings.site
    rotated = Publisher(
        publisher.settings.model_copy(
            update={
                "site": site.model_copy(
                    update={
                        "unsubscribe_secret": SecretStr("a-new-secret-after-the-first-attempt"),
                        "unsubscribe_key_id": site.unsubscribe_key_id + 1,
                        "previous_unsubscribe_secrets": {
                            site.unsubscribe_key_id: site.unsubscribe_secret
                        },
                    }
                )
            }
        )
    )
    day = NOW.date()
    new_ids, old_ids = (edition_message_ids(x, "daily", day) for x in (rotated.settings.site, site))
    assert new_ids(1) != old_ids(1)
    retry, _ = send(rotated, LATER)
    assert retry.report.counts == {DeliveryState.SENT: 1}
    assert [c.message_id for c in relay.handler.copies(VICTIM)] == [queued, queued]


# -- the server answers too late -------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "state", "stored"),
    [
        (Stage.RCPT, DeliveryState.DEFERRED, 0),
        # Stored before the late reply: the server may deliver it, so the ledger cannot say.
        (Stage.DOT, DeliveryState.UNKNOWN, 1),
    ],
    ids=["rcpt", "dot-after-data-stored"],
)
def test_a_reply_slower_than_the_client_timeout(
    make_publisher: MakePublisher,
    relay: FaultServer,
    *,
    stage: Stage,
    state: DeliveryState,
    stored: int,
) -> None:
    publisher = make_publisher(relay.port, timeout=1.0)
    everyone = [s.email for s in publisher.store.active_subscribers("daily")]
    # The server would answer after 30 s; the client gives up after 1 s and hangs up, which
    # ends the server's wait.
    relay.handler.script(VICTIM, stage, delay(30.0))

    result, took = send(publisher, NOW)

    assert took < timedelta(seconds=10)
    rows = ledger(publisher)
    row = rows[VICTIM]
    assert row["state"] == state
    assert row["last_reply"].startswith(f"no reply at {stage}: ")
    assert row["last_reply"].endswith("timed out")
    assert_first_retry(row, NOW, took)
    assert len(relay.handler.copies(VICTIM)) == stored
    assert_everyone_else_sent_once(rows, relay, VICTIM)
    assert result.report.counts == {DeliveryState.SENT: len(everyone) - 1, state: 1}


# -- the relay is down for a while -----------------------------------------------------------


def test_relay_down_at_the_start_then_back(make_publisher: MakePublisher) -> None:
    relay = FaultServer()  # not listening yet
    publisher = make_publisher(relay.port)
    everyone = [s.email for s in publisher.store.active_subscribers("daily")]
    try:
        with pytest.raises(TransportError, match="cannot reach SMTP server"):
            send(publisher, NOW)
        # Queued, nothing claimed: nobody has been tried yet.
        rows = ledger(publisher)
        assert {e: (r["state"], r["attempts"]) for e, r in rows.items()} == dict.fromkeys(
            everyone, (DeliveryState.QUEUED, 0)
        )

        relay.start()
        result, _ = send(publisher, SOON)
    finally:
        relay.stop()
    assert result.report.counts == {DeliveryState.SENT: len(everyone)}
    rows = ledger(publisher)
    assert {e: (r["state"], r["attempts"]) for e, r in rows.items()} == dict.fromkeys(
        everyone, (DeliveryState.SENT, 1)
    )
    assert relay.handler.per_address() == dict.fromkeys(everyone, 1)
    assert set(relay.handler.per_message_id().values()) == {1}
    assert edition_status(publisher) == EditionStatus.DONE


def test_relay_goes_down_mid_run_then_back_nobody_lost_nobody_doubled(
    make_publisher: MakePublisher, relay: FaultServer
) -> None:
    publisher = make_publisher(relay.port)  # the default pool of connections
    everyone = [s.email for s in publisher.store.active_subscribers("daily")]
    # At the victim's RCPT the relay shuts down: 421 to every session, no new connections.
    relay.handler.script(VICTIM, Stage.RCPT, go_down(), times=1)

    first, took = send(publisher, NOW)

    assert "cannot reach SMTP server" in first.report.relay_down
    rows = ledger(publisher)
    states = {e: r["state"] for e, r in rows.items()}
    assert states[VICTIM] == DeliveryState.DEFERRED
    assert set(states.values()) <= {
        DeliveryState.SENT,
        DeliveryState.DEFERRED,
        DeliveryState.QUEUED,
    }
    sent = {e for e, s in states.items() if s == DeliveryState.SENT}
    deferred = {e for e, s in states.items() if s == DeliveryState.DEFERRED}
    queued = {e for e, s in states.items() if s == DeliveryState.QUEUED}
    for email in deferred:  # tried once (refused, or no connection): retry later
        assert_first_retry(rows[email], NOW, took)
    for email in queued:  # never handed to a connection: released untouched
        assert (rows[email]["attempts"], rows[email]["next_attempt_at"]) == (0, None)
    assert relay.handler.per_address() == dict.fromkeys(sent, 1)
    (shut_down,) = [s for s in relay.handler.sessions if VICTIM in s.recipients]
    assert (shut_down.recipients[-1], shut_down.ended_by) == (VICTIM, Action.DOWN)
    assert edition_status(publisher) == EditionStatus.SENDING

    relay.stop()
    relay.start()

    # Back up, before the retries are due: only what was never tried goes now.
    second, _ = send(publisher, SOON)
    assert second.report.counts == ({DeliveryState.SENT: len(queued)} if queued else {})
    states = {e: r["state"] for e, r in ledger(publisher).items()}
    assert {e for e, s in states.items() if s == DeliveryState.DEFERRED} == deferred
    assert relay.handler.per_address() == dict.fromkeys(sent | queued, 1)

    # Due: the rest go, each exactly once.
    third, _ = send(publisher, LATER)
    assert third.report.counts == {DeliveryState.SENT: len(deferred)}
    rows = ledger(publisher)
    assert {e: r["state"] for e, r in rows.items()} == dict.fromkeys(everyone, DeliveryState.SENT)
    assert relay.handler.per_address() == dict.fromkeys(everyone, 1)
    assert relay.handler.per_message_id() == {r["message_id"]: 1 for r in rows.values()}
    assert edition_status(publisher) == EditionStatus.DONE
