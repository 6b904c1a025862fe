"""ARF complaints (RFC 5965) read from fixtures shaped like Yahoo's, Microsoft's and others'."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from digest.intake.bounce_reports import BounceReport, parse_report
from digest.intake.complaints import Complaint, parse_complaint
from digest.intake.inbox import read_message, read_reports
from tests.support.complaints import identifiers

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bounces"
COMPLAINTS = FIXTURES / "complaints"


@dataclass(frozen=True)
class Expected:
    user_agent: str
    arrival: datetime
    senders: tuple[str, ...]
    message_id: str | None
    recipient: str  # "" when redacted or absent
    links: int  # List-Unsubscribe URIs of the original


ARRIVALS = {
    "yahoo": datetime(2026, 11, 26, 6, 0, 41, tzinfo=UTC),
    "outlook": datetime(2026, 11, 26, 6, 0, 52, tzinfo=timezone(timedelta(hours=-8))),
    "levelezo": datetime(2026, 11, 26, 7, 0, 58, tzinfo=timezone(timedelta(hours=1))),
    "citromail": datetime(2026, 11, 26, 6, 1, 3, tzinfo=UTC),
    "jmrp": datetime(2026, 11, 28, 2, 22, 17, tzinfo=UTC),  # no fields: the report's Date
}
CASES = {
    "arf-yahoo-abuse.eml": Expected(
        "Yahoo!-Mail-Feedback/2.0", ARRIVALS["yahoo"], (identifiers(1)["verp"],),
        identifiers(1)["message_id"], "kiss.marta@yahoo.com", 2,
    ),
    "arf-outlook-redacted.eml": Expected(
        "Microsoft Junk Mail Reporting Program/1.0", ARRIVALS["outlook"],
        ("bounces@bounces.budapestpost.example",), identifiers(2)["message_id"], "", 0,
    ),
    "arf-headers-only.eml": Expected(
        "Levelezo-FBL/1.3", ARRIVALS["levelezo"], ("hirlevel@budapestpost.example",),
        "<test.0b6f4de2a83c4f1e9a7d55c2e16b3f08@budapestpost.example>", "", 2,
    ),
    "arf-unattributable.eml": Expected(
        "Citromail-CFL/0.9", ARRIVALS["citromail"], (), None, "", 0,
    ),
    "jmrp-legacy.eml": Expected(
        "Microsoft JMRP (not ARF)", ARRIVALS["jmrp"], (), identifiers(5)["message_id"],
        "feher.anna@hotmail.com", 0,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES), ids=sorted(CASES))
def test_each_fixture_reads_as_a_complaint(name: str) -> None:
    raw = (COMPLAINTS / name).read_bytes()
    complaint = parse_complaint(raw)
    expected = CASES[name]
    assert complaint is not None
    assert (complaint.feedback_type, complaint.is_complaint) == ("abuse", True)
    assert complaint.user_agent == expected.user_agent
    assert complaint.arrival_date == expected.arrival
    assert complaint.senders == expected.senders
    assert complaint.original_message_id == expected.message_id
    assert complaint.recipient == expected.recipient
    assert len(complaint.unsubscribe_links) == expected.links
    assert parse_report(raw) is None  # a complaint is no bounce


def test_the_unsubscribe_links_are_the_originals() -> None:
    complaint = parse_complaint((COMPLAINTS / "arf-headers-only.eml").read_bytes())
    assert complaint is not None
    assert complaint.unsubscribe_links == (identifiers(3)["unsubscribe"], identifiers(3)["mailto"])


def arf(feedback_type: str, *, fields: str = "", date: str = "") -> bytes:
    return (
        f"From: fbl@isp.example\nTo: fbl@budapestpost.example\n{date}MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nA report.\n\n"
        f"--b\nContent-Type: message/feedback-report\n\nFeedback-Type: {feedback_type}\n"
        f"User-Agent: Test/1\nVersion: 1\n{fields}\n"
        "--b\nContent-Type: text/rfc822-headers\n\nFrom: hirlevel@budapestpost.example\n\n--b--\n"
    ).encode()


@pytest.mark.parametrize(
    ("feedback_type", "complaint"),
    [("abuse", True), ("fraud", True), ("virus", True), ("other", True), ("Abuse", True),
     ("opt-out", True), ("not-spam", False), ("auth-failure", False)],
    ids=["abuse", "fraud", "virus", "other", "upper-case", "unknown-type", "not-spam",
         "auth-failure"],
)  # fmt: skip
def test_feedback_types(feedback_type: str, complaint: bool) -> None:
    found = parse_complaint(arf(feedback_type))
    assert found is not None and found.is_complaint is complaint


def test_without_an_arrival_date_the_reports_own_date_is_kept() -> None:
    found = parse_complaint(arf("abuse", date="Date: Sat, 28 Nov 2026 08:03:15 +0100\n"))
    assert found is not None
    assert found.arrival_date == datetime(2026, 11, 28, 7, 3, 15, tzinfo=UTC)
    assert parse_complaint(arf("abuse")).arrival_date is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "raw",
    [
        (FIXTURES / "reader-reply.eml").read_bytes(),
        (FIXTURES / "postfix-5.1.1.eml").read_bytes(),
        arf("abuse").replace(b"message/feedback-report", b"text/plain"),
        (COMPLAINTS / "jmrp-legacy.eml").read_bytes().replace(b"From: staff@", b"From: anna@"),
    ],
    ids=["reader-reply", "dsn", "feedback-report-without-its-part", "jmrp-from-someone-else"],
)
def test_other_mail_is_not_a_complaint(raw: bytes) -> None:
    assert parse_complaint(raw) is None


def test_a_mailbox_gives_complaints_and_bounces_apart(tmp_path: Path) -> None:
    for file in [*COMPLAINTS.glob("*.eml"), FIXTURES / "postfix-5.1.1.eml"]:
        (tmp_path / file.name).write_bytes(file.read_bytes())
    found = dict(read_reports(tmp_path))
    kinds = {Path(name).name: type(report).__name__ for name, report in found.items()}
    assert kinds == {**{name: "Complaint" for name in CASES}, "postfix-5.1.1.eml": "BounceReport"}


def test_a_dsn_names_where_it_came_back_to() -> None:
    verp = identifiers(2)["verp"]
    raw = (
        "Return-Path: <>\nDelivered-To: bounces@bounces.budapestpost.example\n"
        f"X-Original-To: {verp}\nFrom: MAILER-DAEMON@mx.example.hu\nTo: {verp}\n"
        "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; "
        'boundary="b"\n\n--b\nContent-Type: text/plain\n\nGone.\n\n'
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.hu\n\n"
        "Final-Recipient: rfc822; someone@example.hu\nAction: failed\nStatus: 5.1.1\n\n--b--\n"
    ).encode()
    report = read_message(raw)
    assert isinstance(report, BounceReport) and not isinstance(report, Complaint)
    assert report.returned_to == ("bounces@bounces.budapestpost.example", verp)
    assert report.original_message_id is None
