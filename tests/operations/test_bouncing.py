"""`digest bounces` on a real ledger (SQLite, PostgreSQL): hard suppresses, soft counts, policy
never does.

EMAIL.md #15, #55, #68.
"""

from __future__ import annotations

import mailbox
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.edition.tokens import message_id, read_message_id
from digest.models import DeliveryState, Edition, SubscriptionStatus
from digest.operations.bounces import BounceSummary, apply_reports
from digest.store import Enrolment, Outcome, Store
from digest.store.schema import make_engine, upgrade
from tests.conftest import NOW, ROOT

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bounces"
ACTIVE, BOUNCED = SubscriptionStatus.ACTIVE, SubscriptionStatus.BOUNCED
# Every fixture's recipient but Gmail's, which stays an unknown address.
KNOWN = [
    "kovacs.anna@example.hu",
    "szabo.peter@contoso.hu",
    "toth.gabor@lassu.example",
    "nagy.eva@freemail.example",
    "fekete.zsofia@gmail.com",
    "lakatos.bence@outlook.com",
    "horvath.jozsef@regi.example",
]
HARD_ONES = {"kovacs.anna@example.hu", "szabo.peter@contoso.hu", "horvath.jozsef@regi.example"}


@pytest.fixture
def store(database_url: str) -> Store:
    engine = make_engine(database_url)
    upgrade(engine, now=NOW)
    store = Store(engine)
    store.sync_lists([("daily", "Daily"), ("weekly", "Weekly")], now=NOW)
    return store


def enrol(store: Store, *emails: str) -> None:
    people = [Enrolment(e, "", "", "", ACTIVE) for e in emails]
    for slug in ("daily", "weekly"):
        store.enrol(people, slug, now=NOW)


def state(store: Store, email: str) -> tuple[SubscriptionStatus, SubscriptionStatus, int]:
    """(daily status, weekly status, soft bounces in a row)."""
    rows = {r.list_slug: r for r in store.subscription_rows() if r.email == email}
    return rows["daily"].status, rows["weekly"].status, rows["daily"].soft_bounces


def counts(summary: BounceSummary) -> dict[str, int]:
    return {
        "reports": summary.reports,
        "not_bounces": summary.not_bounces,
        "hard": summary.hard,
        "soft": summary.soft,
        "policy": summary.policy,
        "informational": summary.informational,
        "unknown": summary.unknown,
        "seen": summary.seen,
        "unreadable": len(summary.unreadable),
    }


FIRST_READ = {
    "reports": 8, "not_bounces": 1, "hard": 3, "soft": 1, "policy": 2, "informational": 1,
    "unknown": 1, "seen": 0, "unreadable": 0,
}  # fmt: skip
SECOND_READ = {**FIRST_READ, "hard": 0, "soft": 0, "policy": 0, "unknown": 0, "seen": 7}


def test_fixture_reports_are_applied(store: Store) -> None:
    enrol(store, *KNOWN)
    summary = apply_reports(store, FIXTURES, secrets={1: SECRET}, soft_limit=3, now=NOW)
    assert counts(summary) == FIRST_READ
    for email in KNOWN:
        expected = (BOUNCED, BOUNCED) if email in HARD_ONES else (ACTIVE, ACTIVE)
        assert state(store, email)[:2] == expected, email
    assert state(store, "nagy.eva@freemail.example") == (ACTIVE, ACTIVE, 1)
    assert len(summary.policy_lines) == 2
    assert any(
        "fekete.zsofia@gmail.com" in line and "5.7.26" in line for line in summary.policy_lines
    )
    assert any(
        line.startswith("unknown recipient nem.letezik.senki@gmail.com") for line in summary.changes
    )


@pytest.mark.parametrize("form", ["same-folder", "maildir", "mbox"], ids=str)
def test_reading_again_counts_nothing_twice(store: Store, tmp_path: Path, form: str) -> None:
    enrol(store, *KNOWN)
    apply_reports(store, FIXTURES, secrets={1: SECRET}, soft_limit=3, now=NOW)
    again = FIXTURES
    if form == "maildir":
        again = tmp_path / "Maildir"
        box = mailbox.Maildir(again, create=True)
        for file in sorted(FIXTURES.glob("*.eml")):
            box.add(file.read_bytes())
    elif form == "mbox":
        again = tmp_path / "bounces.mbox"
        box = mailbox.mbox(again, create=True)
        for file in sorted(FIXTURES.glob("*.eml")):
            box.add(file.read_bytes())
        box.close()
    summary = apply_reports(
        store, again, secrets={1: SECRET}, soft_limit=3, now=NOW + timedelta(hours=1)
    )
    assert counts(summary) == SECOND_READ
    assert state(store, "nagy.eva@freemail.example") == (ACTIVE, ACTIVE, 1)
    assert summary.changes == [] and summary.policy_lines == []


# -- soft bounces against the delivery ledger ------------------------------------------------

SECRET = b"test-secret"
EVA = "eva@example.hu"


def send_edition(store: Store, day: int) -> tuple[Edition, datetime]:
    """Edition `day` of the daily list, delivered (SENT) to every active subscriber."""
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
    store.queue_deliveries(edition, message_id=lambda sid: mid(at.date(), sid), now=at)
    claims = store.claim(edition, owner="test", limit=100, lease=timedelta(minutes=5), now=at)
    store.record(
        [Outcome(c.edition_id, c.subscriber.id, DeliveryState.SENT, "250 ok") for c in claims],
        owner="test",
        now=at,
    )
    return edition, at


def mid(day: date, subscriber_id: int) -> str:
    return message_id(
        secret=SECRET,
        domain="budapestpost.example",
        list_slug="daily",
        edition_date=day,
        subscriber_id=subscriber_id,
    )


def dsn(recipient: str, status: str, *, original: str | None, action: str = "failed") -> bytes:
    """A Postfix-shaped report; it quotes the original's headers when `original` is given."""
    quoted = (
        f"--b\nContent-Type: text/rfc822-headers\n\nMessage-ID: {original}\nTo: {recipient}\n\n"
        if original
        else ""
    )
    return (
        "From: MAILER-DAEMON@mail.budapestpost.example (Mail Delivery System)\n"
        "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nIt bounced.\n\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
        f"Final-Recipient: rfc822; {recipient}\nAction: {action}\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; 552 {status} mailbox full\n\n{quoted}--b--\n"
    ).encode()


class Inbox:
    """A folder of .eml files that `digest bounces` reads again after each new arrival."""

    def __init__(self, store: Store, folder: Path) -> None:
        self.store, self.folder, self.count = store, folder, 0
        folder.mkdir()

    def receive(self, raw: bytes, *, at: datetime, limit: int = 3) -> BounceSummary:
        self.count += 1
        (self.folder / f"{self.count:03}.eml").write_bytes(raw)
        return apply_reports(
            self.store,
            self.folder,
            secrets={1: SECRET},
            soft_limit=limit,
            now=at + timedelta(hours=2),
        )


@pytest.fixture
def eva(store: Store) -> int:
    enrol(store, EVA, "other@example.hu")
    return store.subscriber_by_email(EVA).id


def test_soft_bounces_in_a_row_suppress_at_the_limit(
    store: Store, eva: int, tmp_path: Path
) -> None:
    inbox = Inbox(store, tmp_path / "in")
    for day, expected in (
        (1, (ACTIVE, ACTIVE, 1)),
        (2, (ACTIVE, ACTIVE, 2)),
        (3, (BOUNCED, BOUNCED, 3)),
    ):
        edition, at = send_edition(store, day)
        summary = inbox.receive(dsn(EVA, "5.2.2", original=mid(edition.edition_date, eva)), at=at)
        assert summary.soft == 1 and summary.seen == day - 1
        assert state(store, EVA) == expected
    assert summary.suppressed_by_soft == 1
    assert summary.changes[-1].endswith("soft bounce 3 in a row: suppressed on every list")
    assert f"(daily {edition.edition_date:%Y-%m-%d})" in summary.changes[-1]
    assert state(store, "other@example.hu") == (ACTIVE, ACTIVE, 0)


def test_a_message_that_got_through_starts_the_count_again(
    store: Store, eva: int, tmp_path: Path
) -> None:
    inbox = Inbox(store, tmp_path / "in")
    first, at = send_edition(store, 1)
    inbox.receive(dsn(EVA, "4.4.7", original=mid(first.edition_date, eva)), at=at)
    send_edition(store, 2)  # no bounce comes back for this one
    third, at = send_edition(store, 3)
    inbox.receive(dsn(EVA, "4.4.7", original=mid(third.edition_date, eva)), at=at)
    assert state(store, EVA) == (ACTIVE, ACTIVE, 1)
    fourth, at = send_edition(store, 4)
    inbox.receive(dsn(EVA, "5.2.2", original=mid(fourth.edition_date, eva)), at=at)
    assert state(store, EVA) == (ACTIVE, ACTIVE, 2)


def test_two_reports_of_one_message_count_once(store: Store, eva: int, tmp_path: Path) -> None:
    inbox = Inbox(store, tmp_path / "in")
    edition, at = send_edition(store, 1)
    report = dsn(EVA, "4.4.7", original=mid(edition.edition_date, eva))
    inbox.receive(report, at=at)
    summary = inbox.receive(report.replace(b"It bounced.", b"It bounced again."), at=at)
    assert (summary.soft, summary.seen) == (0, 2)  # the first file, read again, and its twin
    assert state(store, EVA) == (ACTIVE, ACTIVE, 1)


def test_reports_without_a_message_id_count_against_the_latest_message(
    store: Store, eva: int, tmp_path: Path
) -> None:
    inbox = Inbox(store, tmp_path / "in")
    for day in (1, 2):
        _, at = send_edition(store, day)
        inbox.receive(dsn(EVA, "5.2.2", original=None), at=at)
    assert state(store, EVA) == (ACTIVE, ACTIVE, 2)
    assert (
        counts(apply_reports(store, tmp_path / "in", secrets={1: SECRET}, soft_limit=3, now=NOW))[
            "seen"
        ]
        == 2
    )


def test_the_message_id_finds_a_forwarded_subscriber(
    store: Store, eva: int, tmp_path: Path
) -> None:
    edition, at = send_edition(store, 1)
    inbox = Inbox(store, tmp_path / "in")
    original = mid(edition.edition_date, eva)
    summary = inbox.receive(dsn("eva.k@forward.example", "5.1.1", original=original), at=at)
    assert (summary.hard, summary.unknown) == (1, 0)
    assert state(store, EVA)[:2] == (BOUNCED, BOUNCED)
    assert summary.changes == [
        f"hard {EVA} (daily {edition.edition_date:%Y-%m-%d}): 5.1.1 552 5.1.1 mailbox full: "
        "suppressed on every list"
    ]


def test_a_message_id_not_in_the_ledger_names_nobody(
    store: Store, eva: int, tmp_path: Path
) -> None:
    edition, at = send_edition(store, 1)
    forged = mid(edition.edition_date + timedelta(days=1), eva)  # well made, never sent
    assert read_message_id(forged, secrets=[SECRET]) == (
        "daily",
        edition.edition_date + timedelta(days=1),
        eva,
    )
    summary = Inbox(store, tmp_path / "in").receive(
        dsn("eva.k@forward.example", "5.1.1", original=forged), at=at
    )
    assert (summary.hard, summary.unknown) == (0, 1)
    assert state(store, EVA) == (ACTIVE, ACTIVE, 0)


def test_policy_bounces_never_suppress(store: Store, eva: int, tmp_path: Path) -> None:
    inbox = Inbox(store, tmp_path / "in")
    for day in (1, 2):
        edition, at = send_edition(store, day)
        inbox.receive(dsn(EVA, "5.2.2", original=mid(edition.edition_date, eva)), at=at)
    edition, at = send_edition(store, 3)
    summary = inbox.receive(dsn(EVA, "5.7.26", original=mid(edition.edition_date, eva)), at=at)
    assert (summary.policy, summary.soft, summary.hard) == (1, 0, 0)
    assert state(store, EVA) == (ACTIVE, ACTIVE, 2)
    [line] = summary.policy_lines
    assert line.startswith(f"{EVA} (daily ") and "5.7.26" in line


def test_an_unreadable_file_is_counted_and_the_rest_go_on(store: Store, tmp_path: Path) -> None:
    enrol(store, "kovacs.anna@example.hu")
    shutil.copy(FIXTURES / "postfix-5.1.1.eml", tmp_path / "b.eml")
    (tmp_path / "a.eml").mkdir()  # reading it fails the way an unreadable file does
    summary = apply_reports(store, tmp_path, secrets={1: SECRET}, soft_limit=3, now=NOW)
    assert (summary.hard, len(summary.unreadable)) == (1, 1)
    assert "a.eml" in summary.unreadable[0]


def test_the_sample_config_sets_the_soft_bounce_limit() -> None:
    assert load_settings(ROOT / "config" / "digest.toml").bounces.soft_bounce_limit == 3
