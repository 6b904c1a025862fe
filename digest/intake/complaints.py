"""Complaints: ARF feedback reports (RFC 5965), the format of Yahoo's and Outlook's loops.

A report is a multipart/report; report-type=feedback-report of three parts: prose for people,
a message/feedback-report block of fields (Feedback-Type, User-Agent, Version required;
Original-Mail-From, Original-Rcpt-To, Arrival-Date, Reported-Domain and others optional), and
the original as message/rfc822 or only its headers as text/rfc822-headers. Providers redact
the recipient (Yahoo and Microsoft replace it, or drop the header), so a complaint names its
subscriber only through what we signed: the VERP envelope sender, the sealed Message-ID, the
List-Unsubscribe token. Microsoft's older JMRP reports (multipart/mixed, only the original
attached, from staff@hotmail.com) are read as abuse complaints too. Pure parsing: the caller
decides what a complaint does (EMAIL.md #18).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import parsedate_to_datetime

from digest.intake.bounce_reports import addresses_in, quoted_original

_MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")
_URI = re.compile(r"<([^<>\s]+)>")
# Types that report no complaint about the mail (RFC 5965 7.3, RFC 6591): a reader rescuing it
# from the spam folder, and an authentication failure, which is ours to fix.
NOT_COMPLAINTS = frozenset({"not-spam", "auth-failure"})
# How providers write a recipient they hid: "redacted@", "xxxxxxx@", "****@", or no address.
_REDACTED = re.compile(r"^(?:redacted|[x*#.]+)@", re.IGNORECASE)
_JMRP_SENDER = "staff@hotmail.com"
_JMRP_SUBJECT = re.compile(r"^complaint about message from ", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Complaint:
    """One feedback report: what it says, and the original's identifiers we can trust."""

    feedback_type: str  # lower-cased: abuse, fraud, virus, other, not-spam, auth-failure ...
    user_agent: str
    version: str
    arrival_date: datetime | None  # Arrival-Date, else the report's own Date; None if neither
    original_mail_from: str  # the envelope sender the provider saw: ours, a VERP one if on
    original_rcpt_to: tuple[str, ...]  # as given; often redacted
    reported_domain: str
    original_message_id: str | None
    senders: tuple[str, ...]  # Original-Mail-From, then the original's Return-Path
    unsubscribe_links: tuple[str, ...]  # the original's List-Unsubscribe URIs

    @property
    def is_complaint(self) -> bool:
        """Whether the reader objected to the mail (abuse, fraud, virus, other, unknown)."""
        return self.feedback_type not in NOT_COMPLAINTS

    @property
    def recipient(self) -> str:
        """The complaining address as the report gives it, for people; "" if redacted."""
        shown = [a for a in self.original_rcpt_to if not _REDACTED.match(a)]
        return shown[0] if shown else ""


def _words(value: object) -> str:
    return " ".join(str(value or "").split())


def _fields(part: Message) -> Message:
    """The message/feedback-report block: the email package reads message/* as a message."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    data = part.get_payload(decode=True)
    return BytesHeaderParser(policy=policy.default).parsebytes(
        data if isinstance(data, bytes) else str(payload or "").encode("utf-8", "replace")
    )


def _date(*values: object) -> datetime | None:
    for value in values:
        try:
            found = parsedate_to_datetime(_words(value))
        except (TypeError, ValueError, IndexError):
            continue
        if found.tzinfo is not None:
            return found
    return None


def _legacy_jmrp(message: Message) -> Message | None:
    """The fields of Microsoft's older JMRP reports, which are multipart/mixed with only the
    original attached: a complaint by their sender and subject, the recipient (when Microsoft
    left it) in the original's X-HmXmrOriginalRecipient."""
    sender = addresses_in(message.get("From"))
    if message.get_content_type() != "multipart/mixed" or sender != [_JMRP_SENDER]:
        return None
    if not _JMRP_SUBJECT.match(_words(message.get("Subject"))):
        return None
    original = quoted_original(message)
    if original is None:
        return None
    fields = Message()
    fields["Feedback-Type"] = "abuse"
    fields["User-Agent"] = "Microsoft JMRP (not ARF)"
    for value in original.get_all("X-HmXmrOriginalRecipient", []):
        fields["Original-Rcpt-To"] = _words(value)
    return fields


def _arf_fields(message: Message) -> Message | None:
    """The message/feedback-report block of an ARF report, else None."""
    report_type = message.get_param("report-type")
    if message.get_content_type() != "multipart/report" or not isinstance(report_type, str):
        return None
    if report_type.lower() != "feedback-report":
        return None
    block = next(
        (p for p in message.walk() if p.get_content_type() == "message/feedback-report"), None
    )
    return _fields(block) if block is not None else None


def parse_complaint(raw: bytes) -> Complaint | None:
    """Read one message: a Complaint if it is an ARF report (or an older JMRP one), None for
    any other mail."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    fields = _arf_fields(message) or _legacy_jmrp(message)
    if fields is None:
        return None
    original = quoted_original(message)
    mail_from = addresses_in(fields.get("Original-Mail-From"))
    return_path = addresses_in(original.get("Return-Path")) if original is not None else []
    message_id = _MESSAGE_ID.search(str(original.get("Message-ID", ""))) if original else None
    links = _URI.findall(_words(original.get("List-Unsubscribe"))) if original else []
    return Complaint(
        feedback_type=_words(fields.get("Feedback-Type")).lower() or "other",
        user_agent=_words(fields.get("User-Agent")),
        version=_words(fields.get("Version")),
        arrival_date=_date(fields.get("Arrival-Date"), message.get("Date")),
        original_mail_from=mail_from[0] if mail_from else "",
        original_rcpt_to=tuple(
            addresses_in(*fields.get_all("Original-Rcpt-To", []))
            or [_words(v) for v in fields.get_all("Original-Rcpt-To", []) if _words(v)]
        ),
        reported_domain=_words(fields.get("Reported-Domain")),
        original_message_id=message_id[0] if message_id else None,
        senders=tuple(dict.fromkeys(mail_from + return_path)),
        unsubscribe_links=tuple(links),
    )
