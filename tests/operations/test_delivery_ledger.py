"""`deliver` needs only the Ledger protocol: an in-memory ledger and the in-process relay."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from digest.edition.message import ListIdentity, MessageTemplate, Recipient, Sender
from digest.mail.dkim import DkimSigner
from digest.mail.fake import FakeRelay, deferred, refused
from digest.models import DeliveryState, Edition, EditionStatus, Subscriber
from digest.operations.delivery import DeliveryOptions, DeliveryReport, Ledger, deliver
from digest.store import Claim, Outcome
from tests.support.dkim_dns import resolver

NOW = datetime(2026, 3, 2, 6, tzinfo=UTC)
EDITION = Edition(
    id=7,
    list_slug="daily",
    edition_date=date(2026, 3, 2),
    created_at=NOW,
    cutoff=NOW,
    subject="Daily",
    html="<p>Hello</p>",
    text="Hello\n",
    article_ids=(),
    slot_nonce="0123456789abcdef",
)
TEMPLATE = MessageTemplate(
    sender=Sender(name="Budapest Post", address="news@budapestpost.example"),
    identity=ListIdentity(
        slug="daily",
        name="Daily",
        mail_domain="budapestpost.example",
        base_url="https://budapestpost.example",
    ),
    subject="Daily",
    html_body="<p>Hello</p>",
    text_body="Hello\n.\n",
    nonce=EDITION.slot_nonce,
    feedback_id="20260302:daily:digest:budapestpost",
)


@dataclass
class Row:
    subscriber: Subscriber
    state: DeliveryState = DeliveryState.QUEUED
    attempts: int = 0
    due: datetime = NOW
    owner: str = ""


@dataclass
class MemoryLedger:
    """The delivery rows of one edition in a dict; no leases expire in these tests."""

    rows: dict[int, Row] = field(default_factory=dict)
    status: EditionStatus = EditionStatus.READY
    bounced: set[int] = field(default_factory=set)

    def _due(self, now: datetime) -> list[Row]:
        open_states = (DeliveryState.QUEUED, DeliveryState.DEFERRED, DeliveryState.UNKNOWN)
        return [r for r in self.rows.values() if r.state in open_states and r.due <= now]

    def due_count(self, edition: Edition, *, now: datetime) -> int:
        return len(self._due(now))

    def claim(
        self, edition: Edition, *, owner: str, limit: int, lease: timedelta, now: datetime
    ) -> list[Claim]:
        taken = self._due(now)[:limit]
        for row in taken:
            row.state, row.owner, row.attempts = DeliveryState.SENDING, owner, row.attempts + 1
        return [
            Claim(edition.id, r.subscriber, f"<{r.subscriber.id}@x>", r.attempts) for r in taken
        ]

    def record(self, outcomes: Sequence[Outcome], *, owner: str, now: datetime) -> None:
        for outcome in outcomes:
            row = self.rows[outcome.subscriber_id]
            row.state, row.due = outcome.state, outcome.next_attempt_at or now

    def release(self, claims: Sequence[Claim], *, owner: str, now: datetime) -> None:
        for claim in claims:
            self.rows[claim.subscriber.id].state = DeliveryState.QUEUED

    def sending_owners(self, edition_id: int) -> set[str]:
        return {r.owner for r in self.rows.values() if r.state == DeliveryState.SENDING}

    def expire_leases(self, edition_id: int, owner: str, *, now: datetime) -> int:
        return 0

    def delivery_counts(self, edition_id: int) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows.values():
            counts[row.state] = counts.get(row.state, 0) + 1
        return counts

    def set_edition_status(self, edition_id: int, status: EditionStatus) -> None:
        self.status = status

    def edition_status(self, edition_id: int) -> EditionStatus:
        return self.status

    def mark_bounced(self, subscriber_id: int, *, now: datetime) -> None:
        self.bounced.add(subscriber_id)


def people(count: int) -> MemoryLedger:
    return MemoryLedger(
        {i: Row(Subscriber(id=i, email=f"reader{i}@example.hu")) for i in range(1, count + 1)}
    )


def run(
    ledger: Ledger,
    relay: FakeRelay,
    at: datetime,
    *,
    signer: DkimSigner | None = None,
    **options: object,
) -> DeliveryReport:
    return deliver(
        ledger,
        EDITION,
        templates=lambda sections, locale: TEMPLATE,
        recipient=lambda claim: Recipient(
            address=claim.subscriber.email,
            name=claim.subscriber.name,
            greeting_name="reader",
            message_id=claim.message_id,
            unsubscribe_token="T",
            preferences_token="P",
        ),
        envelope_from=lambda claim: "news@budapestpost.example",
        connect=relay.connect,
        clock=lambda: at,
        options=DeliveryOptions(owner="test", connections=2, **options),
        signer=signer,
    )


def test_a_4xx_is_deferred_then_sent_and_a_5xx_bounces_once() -> None:
    ledger, relay = people(5), FakeRelay()
    relay.script("reader1@example.hu", deferred())
    relay.script("reader2@example.hu", refused(550, "5.1.1 no such user"))
    first = run(ledger, relay, NOW)
    assert first.counts == {
        DeliveryState.SENT: 3,
        DeliveryState.DEFERRED: 1,
        DeliveryState.FAILED: 1,
    }
    assert ledger.bounced == {2} and ledger.status == EditionStatus.SENDING
    second = run(ledger, relay, NOW + timedelta(hours=1))
    assert second.counts == {DeliveryState.SENT: 1}
    assert len(relay.to("reader1@example.hu")) == 1 and not relay.to("reader2@example.hu")
    assert ledger.status == EditionStatus.DONE
    # the line holding only "." is written =2E: nothing for SMTP to stuff, and it reads as "."
    assert all(b"\r\n=2E\r\n" in item.data for item in relay.sent)


def test_permanent_failures_in_a_row_pause_the_edition() -> None:
    ledger, relay = people(20), FakeRelay()
    for i in range(1, 21):
        relay.script(f"reader{i}@example.hu", refused(554, "5.7.1 rejected by policy"))
    report = run(ledger, relay, NOW, pause_after_failures=3, commit_group=1)
    assert report.paused and ledger.status == EditionStatus.PAUSED
    assert 3 <= report.counts[DeliveryState.FAILED] < 20 and not ledger.bounced
    assert not ledger.sending_owners(EDITION.id)  # what was not sent went back to the queue


def test_signed_messages_verify_and_a_bad_one_fails_alone(tmp_path: Path) -> None:
    # Signing runs in the connection threads: a message that cannot be made fails its own
    # delivery only, and every other message goes out signed over the bytes sent.
    import dkim

    from digest.mail.dkim import generate_key, load_private_key

    key = generate_key(tmp_path, selector="d2026", domain="budapestpost.example")
    signer = DkimSigner(
        domain="budapestpost.example",
        selector="d2026",
        private_key=load_private_key(key.private_key_path),
    )
    ledger, relay = people(30), FakeRelay()
    ledger.rows[4].subscriber = Subscriber(id=4, email="reader4@example.hu", name="Evil\r\nBcc: x")
    report = run(ledger, relay, NOW, signer=signer)
    assert report.counts == {DeliveryState.SENT: 29, DeliveryState.FAILED: 1}
    assert ledger.rows[4].state == DeliveryState.FAILED and not relay.to("reader4@example.hu")

    assert len(relay.sent) == 29
    assert all(dkim.verify(item.data, dnsfunc=resolver(key)) for item in relay.sent)
