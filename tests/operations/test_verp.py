"""VERP end to end: a send through a real SMTP server (aiosmtpd) gives every message its own
signed envelope sender, and `digest bounces` attributes a bounce by it alone (EMAIL.md #67)."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest

from digest.config import BouncesSettings, Settings
from digest.edition.verp import find_verp_token, read_verp_token
from digest.models import DeliveryState, SubscriptionStatus
from digest.operations.bounces import apply_reports
from digest.operations.publisher import Publisher
from tests.conftest import NOW, RecordingHandler, SeededTemplates, settings_for

BOUNCES = "bounces@bounces.budapestpost.example"


@pytest.fixture
def verp_publisher(
    tmp_path: Path,
    smtp_server: tuple[RecordingHandler, int],
    database_url: str,
    seeded_templates: SeededTemplates,
) -> Publisher:
    settings = settings_for(
        tmp_path,
        smtp_server[1],
        database_url=database_url,
        bounces=BouncesSettings(address=BOUNCES, verp=True),
    )
    seeded_templates.copy_into(settings)
    return Publisher(settings)


def secrets(settings: Settings) -> list[bytes]:
    return list(settings.site.unsubscribe_secrets().values())


def stripped_dsn(returned_to: str, final_recipient: str) -> bytes:
    """A DSN as a forwarding host writes it: it names the address it forwarded to, and quotes
    nothing of the original; only where it came back to says what it returns."""
    return (
        "Return-Path: <>\n"
        f"Delivered-To: {returned_to}\n"
        "From: Mail Delivery System <MAILER-DAEMON@mx.forward.example>\n"
        f"To: {returned_to}\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Auto-Submitted: auto-replied\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="fw"\n\n'
        "--fw\nContent-Type: text/plain; charset=us-ascii\n\n"
        "This is the mail system at host mx.forward.example.\n\n"
        f"<{final_recipient}>: host mail.forward.example said: 550 5.1.1 "
        "User unknown (in reply to RCPT TO command)\n\n"
        "--fw\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.forward.example\nArrival-Date: Mon,  2 Mar 2026 07:01:03 +0100\n\n"
        f"Final-Recipient: rfc822; {final_recipient}\nAction: failed\nStatus: 5.1.1\n"
        "Remote-MTA: dns; mail.forward.example\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\n\n--fw--\n"
    ).encode()


def test_every_message_has_its_own_signed_envelope_sender(
    verp_publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    result = verp_publisher.send("daily", now=NOW)
    assert result.edition is not None
    received = smtp_server[0].messages
    assert len(received) == result.report.counts[DeliveryState.SENT] > 1
    senders = [message.sender for message in received]
    assert len(set(senders)) == len(senders)  # each MAIL FROM differs
    keys = secrets(verp_publisher.settings)
    for message in received:
        local, _, domain = message.sender.rpartition("@")
        assert domain == "bounces.budapestpost.example" and local.startswith("bounces+")
        token = find_verp_token(message.sender)
        assert token is not None
        who = verp_publisher.store.subscriber_by_email(message.recipients[0])
        assert read_verp_token(token, secrets=keys) == (result.edition.id, who.id)
        # Not the ids in clear: the bytes are enciphered, not an encoding of the numbers.
        raw = base64.b32decode(token.upper())
        assert raw[:12] != struct.pack(">IQ", result.edition.id, who.id)
        # The message's own headers never show the envelope sender.
        assert token not in message.data.decode("ascii", "replace").lower()


def test_a_dsn_naming_only_the_verp_address_suppresses_that_subscriber(
    verp_publisher: Publisher, smtp_server: tuple[RecordingHandler, int], tmp_path: Path
) -> None:
    verp_publisher.send("daily", now=NOW)
    target = smtp_server[0].messages[0]
    who = verp_publisher.store.subscriber_by_email(target.recipients[0])
    before = verp_publisher.store.subscriptions_of(who.id)
    assert {status for status, _, _ in before.values()} == {SubscriptionStatus.ACTIVE}
    inbox = tmp_path / "bounces"
    inbox.mkdir()
    # A relay that lower-cases the local part changes nothing.
    raw = stripped_dsn(target.sender.lower(), "forwarded-to@forward.example")
    (inbox / "1.eml").write_bytes(raw)
    summary = apply_reports(
        verp_publisher.store,
        inbox,
        secrets=verp_publisher.settings.site.unsubscribe_secrets(),
        soft_limit=3,
        now=NOW,
    )
    assert (summary.hard, summary.unknown, summary.forged) == (1, 0, [])
    assert summary.changes == [
        f"hard {who.email} (daily {NOW:%Y-%m-%d}): 5.1.1 550 5.1.1 User unknown: "
        "suppressed on every list"
    ]
    after = verp_publisher.store.subscriptions_of(who.id)
    assert set(after) == set(before)
    assert {status for status, _, _ in after.values()} == {SubscriptionStatus.BOUNCED}
    again = apply_reports(
        verp_publisher.store,
        inbox,
        secrets=verp_publisher.settings.site.unsubscribe_secrets(),
        soft_limit=3,
        now=NOW,
    )
    assert (again.hard, again.seen) == (0, 1)


def test_a_forged_verp_token_is_ignored_with_a_warning(
    verp_publisher: Publisher,
    smtp_server: tuple[RecordingHandler, int],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    verp_publisher.send("daily", now=NOW)
    target = smtp_server[0].messages[0]
    token = find_verp_token(target.sender)
    assert token is not None
    altered = token[:-1] + ("b" if token[-1] != "b" else "c")
    flipped = target.sender.replace(token, altered)
    assert find_verp_token(flipped) == altered
    inbox = tmp_path / "bounces"
    inbox.mkdir()
    (inbox / "1.eml").write_bytes(stripped_dsn(flipped, "forwarded-to@forward.example"))
    with caplog.at_level("WARNING", logger="digest.operations.bounces"):
        summary = apply_reports(
            verp_publisher.store,
            inbox,
            secrets=verp_publisher.settings.site.unsubscribe_secrets(),
            soft_limit=3,
            now=NOW,
        )
    assert (summary.hard, summary.unknown) == (0, 1)  # attributed to nobody
    assert len(summary.forged) == 1 and flipped in summary.forged[0]
    assert "forged or altered" in caplog.text
    who = verp_publisher.store.subscriber_by_email(target.recipients[0])
    statuses = {status for status, _, _ in verp_publisher.store.subscriptions_of(who.id).values()}
    assert statuses == {SubscriptionStatus.ACTIVE}


def test_without_verp_every_message_has_the_one_bounce_address(
    tmp_path: Path,
    smtp_server: tuple[RecordingHandler, int],
    seeded_templates: SeededTemplates,
) -> None:
    settings = settings_for(tmp_path, smtp_server[1], bounces=BouncesSettings(address=BOUNCES))
    seeded_templates.copy_into(settings)
    Publisher(settings).send("daily", now=NOW)
    assert {message.sender for message in smtp_server[0].messages} == {BOUNCES}


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"verp": True}, "needs \\[bounces\\] address"),
        ({"verp": True, "address": f"{'x' * 40}@bounces.example.hu"}, "too long for VERP"),
    ],
    ids=["no-address", "long-local-part"],
)
def test_verp_settings_are_checked(changes: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        BouncesSettings(**changes)  # type: ignore[arg-type]
