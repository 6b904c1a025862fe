"""The ledger the ARF fixtures in tests/fixtures/bounces/complaints/ were written against.

The fixtures carry identifiers this install signed (VERP addresses, sealed Message-IDs,
unsubscribe tokens) with FIXTURE_SECRET for the daily edition of DAY, sent to PEOPLE in this
order (subscriber ids 1-5, edition id 1). `fixture_ledger` makes exactly that on an empty
database, and `identifiers` gives what the fixtures hold, so a test can check they agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from digest.edition.tokens import message_id, unsubscribe_token
from digest.edition.verp import verp_address
from digest.models import DeliveryState, Edition, SubscriptionStatus
from digest.store import Enrolment, Outcome, Store

FIXTURE_SECRET = b"complaint-fixtures-secret-0123456789"
DOMAIN = "budapestpost.example"
BOUNCES = "bounces@bounces.budapestpost.example"
DAY = date(2026, 11, 26)
SENT_AT = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
PEOPLE = (
    "kiss.marta@yahoo.com",  # arf-yahoo-abuse.eml: named by its VERP Original-Mail-From
    "nagy.laszlo@outlook.com",  # arf-outlook-redacted.eml: recipient redacted, Message-ID names
    "varga.judit@levelezo.example",  # arf-headers-only.eml: only the List-Unsubscribe token
    "balogh.istvan@citromail.example",  # arf-unattributable.eml is about them; names nobody
    "feher.anna@hotmail.com",  # jmrp-legacy.eml: Microsoft's older form, by its Message-ID
)


def fixture_ledger(store: Store) -> Edition:
    """Lists daily and weekly, PEOPLE active on both, the daily edition of DAY sent to all."""
    store.sync_lists([("daily", "Daily"), ("weekly", "Weekly")], now=SENT_AT)
    people = [Enrolment(email, "", "", "", SubscriptionStatus.ACTIVE) for email in PEOPLE]
    for slug in ("daily", "weekly"):
        store.enrol(people, slug, now=SENT_AT)
    edition, _ = store.create_edition(
        list_slug="daily",
        edition_date=DAY,
        now=SENT_AT,
        cutoff=SENT_AT,
        subject="Daily",
        html="<p>x</p>",
        text="x",
        article_ids=[],
        slot_nonce="fixtures",
    )
    store.queue_deliveries(edition, message_id=sealed_id, now=SENT_AT)
    claims = store.claim(edition, owner="test", limit=100, lease=timedelta(minutes=5), now=SENT_AT)
    store.record(
        [Outcome(c.edition_id, c.subscriber.id, DeliveryState.SENT, "250 ok") for c in claims],
        owner="test",
        now=SENT_AT,
    )
    return edition


def sealed_id(subscriber_id: int) -> str:
    return message_id(
        secret=FIXTURE_SECRET,
        domain=DOMAIN,
        list_slug="daily",
        edition_date=DAY,
        subscriber_id=subscriber_id,
    )


def identifiers(subscriber_id: int, *, edition_id: int = 1) -> dict[str, str]:
    """What a digest of the fixture edition to `subscriber_id` carried."""
    token = unsubscribe_token(
        secret=FIXTURE_SECRET, key_id=1, subscriber_id=subscriber_id, list_slug="daily"
    )
    return {
        "verp": verp_address(
            BOUNCES, secret=FIXTURE_SECRET, edition_id=edition_id, subscriber_id=subscriber_id
        ),
        "message_id": sealed_id(subscriber_id),
        "unsubscribe": f"https://budapestpost.example/u/daily/{token}",
        "mailto": f"mailto:unsubscribe+daily.{token}@{DOMAIN}",
    }
