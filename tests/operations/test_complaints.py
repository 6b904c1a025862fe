"""`digest bounces` on ARF complaints, on a real ledger (SQLite, PostgreSQL): a complaint
marks its subscriber complained on every list, named only by what we signed (EMAIL.md #8, #18).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.models import SubscriptionStatus
from digest.operations.bounces import BounceSummary, apply_reports
from digest.store import Store
from digest.store.schema import complaints, make_engine, upgrade
from tests.support.complaints import FIXTURE_SECRET, PEOPLE, SENT_AT, fixture_ledger

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bounces" / "complaints"
ACTIVE, COMPLAINED = SubscriptionStatus.ACTIVE, SubscriptionStatus.COMPLAINED
AT = SENT_AT + timedelta(days=3)
KEYS = {1: FIXTURE_SECRET}
MARTA, LASZLO, JUDIT, ISTVAN, ANNA = PEOPLE


@pytest.fixture
def store(database_url: str) -> Store:
    engine = make_engine(database_url)
    upgrade(engine, now=AT)
    store = Store(engine)
    assert fixture_ledger(store).id == 1
    return store


def statuses(store: Store, email: str) -> dict[str, SubscriptionStatus]:
    who = store.subscriber_by_email(email)
    return {slug: status for slug, (status, _, _) in store.subscriptions_of(who.id).items()}


def read(store: Store, folder: Path, at: datetime = AT) -> BounceSummary:
    return apply_reports(store, folder, secrets=KEYS, soft_limit=3, now=at)


def test_the_fixtures_suppress_on_every_list_whom_they_name(store: Store) -> None:
    summary = read(store, FIXTURES)
    assert (summary.complaints, summary.complained, summary.unattributed) == (5, 4, 1)
    assert (summary.reports, summary.hard, summary.not_bounces) == (0, 0, 0)
    for email in (MARTA, LASZLO, JUDIT, ANNA):
        assert statuses(store, email) == {"daily": COMPLAINED, "weekly": COMPLAINED}, email
    assert statuses(store, ISTVAN) == {"daily": ACTIVE, "weekly": ACTIVE}
    where = {line.split(" from ")[1].split(":")[0] for line in summary.changes if " from " in line}
    assert where == {
        f"{MARTA} (daily 2026-11-26) by verp",
        f"{LASZLO} (daily 2026-11-26) by message-id",
        f"{JUDIT} (daily) by unsubscribe-token",
        f"{ANNA} (daily 2026-11-26) by message-id",
    }
    [unattributed] = [line for line in summary.changes if "not applied" in line]
    assert unattributed.startswith(
        "complaint abuse (Citromail-CFL/0.9) about a redacted recipient: nothing we signed "
        "names a subscriber; reported, not applied"
    )
    assert "arf-unattributable.eml" in unattributed
    assert "redacted@outlook.com" not in "\n".join(summary.changes)


def test_each_report_is_recorded_with_its_type_date_and_what_named_it(store: Store) -> None:
    read(store, FIXTURES)
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(
                complaints.c.source,
                complaints.c.feedback_type,
                complaints.c.arrived_at,
                complaints.c.named_by,
                complaints.c.effect,
                complaints.c.subscriber_id,
                complaints.c.edition_id,
            )
        ).all()
    found = {Path(row.source).name: row[1:] for row in rows}
    assert found == {
        "arf-yahoo-abuse.eml": (
            "abuse", datetime(2026, 11, 26, 6, 0, 41, tzinfo=UTC), "verp", "suppressed", 1, 1,
        ),
        "arf-outlook-redacted.eml": (
            "abuse", datetime(2026, 11, 26, 14, 0, 52, tzinfo=UTC), "message-id", "suppressed",
            2, 1,
        ),
        "arf-headers-only.eml": (
            "abuse", datetime(2026, 11, 26, 6, 0, 58, tzinfo=UTC), "unsubscribe-token",
            "suppressed", 3, None,
        ),
        "arf-unattributable.eml": (
            "abuse", datetime(2026, 11, 26, 6, 1, 3, tzinfo=UTC), "", "unattributed", None, None,
        ),
        "jmrp-legacy.eml": (
            "abuse", datetime(2026, 11, 28, 2, 22, 17, tzinfo=UTC), "message-id", "suppressed",
            5, 1,
        ),
    }  # fmt: skip


def test_reading_again_applies_nothing_twice(store: Store) -> None:
    read(store, FIXTURES)
    again = read(store, FIXTURES, AT + timedelta(hours=1))
    assert (again.complaints, again.complained, again.unattributed, again.seen) == (5, 0, 0, 5)
    assert again.changes == []


def test_a_complained_subscriber_stays_so_through_an_import(store: Store) -> None:
    from digest.store import Enrolment

    read(store, FIXTURES)
    store.enrol([Enrolment(MARTA, "", "", "", ACTIVE)], "daily", now=AT)
    assert statuses(store, MARTA)["daily"] == COMPLAINED


def test_a_forged_verp_token_names_nobody(store: Store, tmp_path: Path) -> None:
    raw = (FIXTURES / "arf-yahoo-abuse.eml").read_text()
    # Another token, and the original's other identifiers gone: only the forgery is left.
    forged = raw.replace("er7afuofslewzkvm5opst7e2yvtwox2u", "er7afuofslewzkvm5opst7e2yvtwox2a")
    forged = "\n".join(
        line
        for line in forged.splitlines()
        if not line.startswith(("Message-ID: <daily", "List-Unsubscribe:", " <mailto:"))
    )
    (tmp_path / "forged.eml").write_text(forged)
    summary = read(store, tmp_path)
    assert (summary.complaints, summary.complained, summary.unattributed) == (1, 0, 1)
    assert len(summary.forged) == 1  # Original-Mail-From, the same as the Return-Path
    assert statuses(store, MARTA) == {"daily": ACTIVE, "weekly": ACTIVE}


def test_a_not_spam_report_is_recorded_and_changes_nothing(store: Store, tmp_path: Path) -> None:
    raw = (FIXTURES / "arf-outlook-redacted.eml").read_text()
    (tmp_path / "not-spam.eml").write_text(
        raw.replace("Feedback-Type: abuse", "Feedback-Type: not-spam")
    )
    summary = read(store, tmp_path)
    assert (summary.complaints, summary.complained) == (1, 0)
    assert summary.changes[0].endswith("not a complaint, nothing changed")
    assert statuses(store, LASZLO) == {"daily": ACTIVE, "weekly": ACTIVE}


def test_a_message_id_the_ledger_never_sent_names_nobody(store: Store, tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "arf-outlook-redacted.eml", tmp_path / "a.eml")
    with store.engine.begin() as connection:  # as if the delivery row were lost
        from digest.store.schema import deliveries

        connection.execute(deliveries.delete().where(deliveries.c.subscriber_id == 2))
    summary = read(store, tmp_path)
    assert (summary.complained, summary.unattributed) == (0, 1)
    assert statuses(store, LASZLO) == {"daily": ACTIVE, "weekly": ACTIVE}
