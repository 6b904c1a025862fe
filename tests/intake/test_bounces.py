"""Bounce parsing over fixture DSNs shaped like the real ones (EMAIL.md #55, #68)."""

from __future__ import annotations

import logging
import mailbox
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from digest.errors import ConfigError
from digest.intake.bounce_reports import (
    Action,
    BounceKind,
    BounceReport,
    classify,
    parse_report,
)
from digest.intake.complaints import Complaint
from digest.intake.inbox import read_reports

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bounces"


@dataclass(frozen=True)
class Expected:
    recipient: str
    action: Action
    status: str
    kind: BounceKind
    message_id: str  # the original's, as digest.edition.tokens.message_id wrote it
    words: str  # a piece of the diagnostic


def mid(local: str) -> str:
    return f"<{local}@budapestpost.example>"


HARD, SOFT, POLICY, INFO = BounceKind.HARD, BounceKind.SOFT, BounceKind.POLICY, BounceKind.INFO
FAILED, DELAYED = Action.FAILED, Action.DELAYED
BOUNCES = {
    "postfix-5.1.1.eml": Expected(
        "kovacs.anna@example.hu", FAILED, "5.1.1", HARD,
        mid("daily.20261126.1042.3f9a1c2b7d4e"), "User unknown in virtual mailbox table",
    ),
    "gmail-5.1.1.eml": Expected(
        "nem.letezik.senki@gmail.com", FAILED, "5.1.1", HARD,
        mid("daily.20261126.2077.8b2e4f60a1c3"),
        "550-5.1.1 The email account that you tried to reach does not exist.",
    ),
    "outlook-5.1.10.eml": Expected(
        "szabo.peter@contoso.hu", FAILED, "5.1.10", HARD,
        mid("business.20261126.515.4c9d2a7e1b08"), "550 5.1.10 RESOLVER.ADR.RecipientNotFound",
    ),
    "postfix-delayed-4.4.1.eml": Expected(
        "toth.gabor@lassu.example", DELAYED, "4.4.1", INFO,
        mid("daily.20261126.3310.e7a1b9c05d42"), "Connection timed out",
    ),
    "exim-mailbox-full-5.2.2.eml": Expected(
        "nagy.eva@freemail.example", FAILED, "5.2.2", SOFT,
        mid("weekly.20261123.8841.5a0f3c9e21d7"), "552 5.2.2 Mailbox full",
    ),
    "gmail-policy-5.7.26.eml": Expected(
        "fekete.zsofia@gmail.com", FAILED, "5.7.26", POLICY,
        mid("daily.20261126.4120.b3c8d1e2f4a6"), "the sender is unauthenticated",
    ),
    "outlook-policy-5.7.515.eml": Expected(
        "lakatos.bence@outlook.com", FAILED, "5.7.515", POLICY,
        mid("daily.20261126.5902.0f1e2d3c4b5a"), "550 5.7.515 Access denied",
    ),
    "qmail-plain-5.1.1.eml": Expected(
        "horvath.jozsef@regi.example", FAILED, "5.1.1", HARD,
        mid("daily.20261126.6633.9d8c7b6a5f4e"),
        "550 5.1.1 <horvath.jozsef@regi.example>... user unknown",
    ),
}  # fmt: skip
NOT_BOUNCES = ["reader-reply.eml"]


@pytest.mark.parametrize(("name", "expected"), BOUNCES.items(), ids=list(BOUNCES))
def test_fixture_reports(name: str, expected: Expected) -> None:
    report = parse_report((FIXTURES / name).read_bytes())
    assert report is not None
    [result] = report.recipients
    got = (result.recipient, result.action, result.status, result.kind)
    assert got == (expected.recipient, expected.action, expected.status, expected.kind)
    assert expected.words in result.diagnostic and "\n" not in result.diagnostic
    assert report.original_message_id == expected.message_id
    assert report.structured is (name != "qmail-plain-5.1.1.eml")


def dsn(
    per_recipient: str, *, report_type: str = "delivery-status", subject: str = "Undelivered Mail"
) -> bytes:
    """A minimal multipart/report around one per-recipient block."""
    return (
        "From: MAILER-DAEMON@mail.budapestpost.example\n"
        f"Subject: {subject}\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nIt bounced.\n\n"
        "--b\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; mail.budapestpost.example\n\n{per_recipient}\n"
        "--b--\n"
    ).encode()


@pytest.mark.parametrize(
    ("block", "action", "status"),
    [
        ("Final-Recipient: rfc822; a@example.hu\nAction: failed\nStatus: 5.0.0\n"
         "Diagnostic-Code: smtp; 550 5.1.1 <a@example.hu>: user unknown\n", Action.FAILED, "5.1.1"),
        ("Final-Recipient: rfc822; a@example.hu\nStatus: 5.1.1\n", Action.FAILED, "5.1.1"),
        ("Final-Recipient: rfc822; a@example.hu\nAction: failed\n"
         "Diagnostic-Code: smtp; 550 Requested action not taken: mailbox unavailable\n",
         Action.FAILED, "5.0.0"),
        ("Final-Recipient: rfc822; a@example.hu\nAction: Delayed (still trying)\nStatus: 4.4.7\n",
         Action.DELAYED, "4.4.7"),
    ],
    ids=["generic-status-precise-diagnostic", "missing-action", "basic-code-only",
         "action-with-comment"],
)  # fmt: skip
def test_sloppy_reports_still_read(block: str, action: Action, status: str) -> None:
    report = parse_report(dsn(block))
    assert report is not None
    [result] = report.recipients
    assert (result.recipient, result.action, result.status) == ("a@example.hu", action, status)


def test_original_recipient_wins_over_a_rewritten_final_recipient() -> None:
    block = (
        "Original-Recipient: rfc822;anna@example.hu\n"
        "Final-Recipient: rfc822; anna.k@mx-internal.example.hu\n"
    )
    report = parse_report(dsn(block + "Action: failed\nStatus: 5.1.1\n"))
    assert report is not None and report.recipients[0].recipient == "anna@example.hu"
    assert report.original_message_id is None


@pytest.mark.parametrize(
    "raw",
    [
        (FIXTURES / "reader-reply.eml").read_bytes(),
        dsn(
            "Final-Recipient: rfc822; a@example.hu\nAction: failed\n", report_type="feedback-report"
        ),
        b"From: Kiss Marta <kiss.marta@example.hu>\nSubject: Automatic reply: Budapest Post\n\n"
        b"I am away until Monday. 550 5.1.1 is not my problem.\n",
        b"From: MAILER-DAEMON@mx.example.hu\nSubject: Undelivered Mail\n\nSomething went wrong.\n",
    ],
    ids=[
        "reader-reply",
        "spam-complaint-arf",
        "auto-reply-quoting-a-code",
        "bounce-without-a-reply-code",
    ],
)
def test_other_mail_is_not_a_bounce(raw: bytes) -> None:
    assert parse_report(raw) is None


@pytest.mark.parametrize(
    ("action", "status", "kind"),
    [
        (Action.FAILED, "5.1.1", BounceKind.HARD),
        (Action.FAILED, "5.1.10", BounceKind.HARD),
        (Action.FAILED, "5.4.4", BounceKind.HARD),
        (Action.FAILED, "5.2.2", BounceKind.SOFT),
        (Action.FAILED, "5.7.1", BounceKind.POLICY),
        (Action.FAILED, "5.7.515", BounceKind.POLICY),
        (Action.FAILED, "5.1.8", BounceKind.POLICY),
        (Action.FAILED, "4.4.1", BounceKind.SOFT),
        (Action.FAILED, "", BounceKind.SOFT),
        (Action.DELAYED, "4.4.1", BounceKind.INFO),
        (Action.DELAYED, "5.1.1", BounceKind.INFO),
        (Action.DELIVERED, "2.0.0", BounceKind.INFO),
    ],
    ids=["no-such-user", "exchange-not-found", "no-route", "mailbox-full", "policy", "outlook-auth",
         "bad-sender-address", "gave-up-after-retries", "no-status", "delayed", "delayed-5xx",
         "delivered"],
)  # fmt: skip
def test_classify(action: Action, status: str, kind: BounceKind) -> None:
    assert classify(action, status) is kind


def summary(
    found: list[tuple[str, BounceReport | Complaint | None]],
) -> list[tuple[str | None, str, str]]:
    return sorted(
        (report.original_message_id, item.recipient, item.status)
        for _, report in found
        if isinstance(report, BounceReport)
        for item in report.recipients
    )


EXPECTED = sorted((row.message_id, row.recipient, row.status) for row in BOUNCES.values())


def test_read_a_folder_of_eml_files() -> None:
    found = list(read_reports(FIXTURES))
    assert [Path(name).name for name, _ in found] == sorted(BOUNCES.keys() | set(NOT_BOUNCES))
    assert summary(found) == EXPECTED
    assert dict(found)[str(FIXTURES / "reader-reply.eml")] is None


def test_read_a_maildir(tmp_path: Path) -> None:
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for file in sorted(FIXTURES.glob("*.eml")):
        maildir.add(file.read_bytes())
    found = list(read_reports(tmp_path / "Maildir"))
    assert len(found) == len(BOUNCES) + len(NOT_BOUNCES)
    assert summary(found) == EXPECTED


def test_read_an_mbox(tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "bounces.mbox", create=True)
    for file in sorted(FIXTURES.glob("*.eml")):
        box.add(file.read_bytes())
    box.close()
    found = list(read_reports(tmp_path / "bounces.mbox"))
    assert [name.rpartition(" [")[2] for name, _ in found][:2] == ["message 1]", "message 2]"]
    assert summary(found) == EXPECTED


def test_read_one_eml_file() -> None:
    [(name, report)] = read_reports(FIXTURES / "postfix-5.1.1.eml")
    assert name.endswith("postfix-5.1.1.eml") and report is not None


def test_an_unreadable_file_is_named_and_the_rest_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copy(FIXTURES / "gmail-5.1.1.eml", tmp_path / "b.eml")
    (tmp_path / "a.eml").mkdir()  # reading it fails the way an unreadable file does
    with caplog.at_level(logging.WARNING, logger="digest.intake.inbox"):
        found = list(read_reports(tmp_path))
    assert [Path(name).name for name, _ in found] == ["b.eml"]
    assert str(tmp_path / "a.eml") in caplog.text


def test_a_missing_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        list(read_reports(tmp_path / "nowhere"))
