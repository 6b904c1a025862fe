"""Bounces: delivery status notifications read into per-recipient records, and what each means.

A standard report (RFC 3464 inside an RFC 6522 multipart/report; report-type=delivery-status)
names each recipient with an Action and an RFC 3463 Status; old MTAs send free text instead,
which a regex fallback reads. When the report quotes the original headers, their Message-ID
names the list, edition and subscriber (`digest.edition.tokens.message_id`); with VERP, the
address the report came back to names them too (`returned_to`). Pure parsing:
nothing here changes a subscription; the caller decides what a hard bounce does (EMAIL.md #55, #68).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from enum import StrEnum

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# A reply as a server writes it: "550 5.1.1 text" or "550-5.1.1 text" or just "550 text".
_REPLY = re.compile(r"(?<![\d.])([45][0-5]\d)[ -](?:([45]\.\d{1,3}\.\d{1,3})\s+)?([^\n]*)")
_DIAGNOSTIC_TYPE = re.compile(r"^\s*[A-Za-z0-9-]+\s*;\s*")  # "smtp; ", "X-Postfix; "
_MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")
_ORIGINAL_ID_LINE = re.compile(
    r"^Message-ID:\s*(<[^<>\s]+@[^<>\s]+>)", re.IGNORECASE | re.MULTILINE
)
_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:@]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Headers that name the mailbox a message was delivered to: MTAs add the first four when they
# deliver (Postfix Delivered-To and X-Original-To, Exim Envelope-To), To is the sender's word.
_DELIVERED_TO = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
# Only mail that looks like a bounce goes to the fallback: a reader quoting "550" is not one.
_DAEMON = re.compile(
    r"mailer-daemon|mail-daemon|postmaster|mail delivery (?:system|subsystem)", re.I
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|failure notice|returned mail|non-?delivery|delivery (?:status notification|fail)"
    r"|mail delivery failed",
    re.IGNORECASE,
)
# Where a free-text bounce starts quoting the original ("--- Below this line is a copy ...").
_COPY_MARK = re.compile(r"^\s*-{2,}.*(?:below this line|copy of|original message).*$", re.I | re.M)


class Action(StrEnum):
    """What the reporting MTA did for one recipient (RFC 3464 2.3.3)."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"
    EXPANDED = "expanded"


class BounceKind(StrEnum):
    """What a recipient's result means for the subscriber."""

    HARD = "hard"  # the address is dead: stop mailing it
    SOFT = "soft"  # temporary, or mailbox full: mail again, count repeats
    POLICY = "policy"  # the receiver refused the sender (authentication, reputation): fix ours
    INFO = "info"  # delayed, delivered, relayed, expanded: nothing to do


def classify(action: Action, status: str) -> BounceKind:
    """Only a permanent failure that blames the mailbox is a hard bounce, so a problem on our
    side (5.7.x policy, a bad sender address) never unsubscribes anyone."""
    if action is not Action.FAILED:
        return BounceKind.INFO
    code = _ENHANCED.search(status)
    if code is None or code[1] != "5":
        return BounceKind.SOFT  # 4.x.x after the retries ran out, or no code: not proof enough
    subject, detail = int(code[2]), int(code[3])
    # X.7.x: policy or authentication; X.1.7/X.1.8: the *sender's* address is bad (RFC 3463).
    if subject == 7 or (subject, detail) in {(1, 7), (1, 8)}:
        return BounceKind.POLICY
    return BounceKind.SOFT if subject == 2 else BounceKind.HARD


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """One recipient's result in a report."""

    recipient: str  # as we addressed it; "" if a free-text bounce names nobody
    action: Action
    status: str  # RFC 3463 class.subject.detail such as "5.1.1"; "" if none was given
    diagnostic: str  # the remote server's words, such as "550 5.1.1 ... User unknown"

    @property
    def kind(self) -> BounceKind:
        """Hard, soft, policy or informational: see `classify`."""
        return classify(self.action, self.status)


@dataclass(frozen=True, slots=True)
class BounceReport:
    """One bounce message: its recipients' results and the Message-ID of the mail it returns."""

    recipients: tuple[RecipientStatus, ...]
    original_message_id: str | None
    structured: bool  # an RFC 3464 report; False when the regex fallback read free text
    # Where the report was delivered (To, Delivered-To, X-Original-To ...: our envelope sender,
    # a VERP address if VERP is on) and the quoted original's Return-Path, in that order.
    returned_to: tuple[str, ...] = ()


def _words(value: object) -> str:
    """A header value on one line: folded reports keep their indentation inside the value."""
    return " ".join(str(value or "").split())


def _address(value: object) -> str:
    """`rfc822; user@example.hu` as `user@example.hu`."""
    text = _words(value)
    return text.partition(";")[2].strip().strip("<>") if ";" in text else text.strip("<>")


def _status(field: str, diagnostic: str) -> str:
    """The RFC 3463 code: the Status field, unless it only says X.0.0 and the server's own
    words are more precise ("Status: 5.0.0" beside "550 5.1.1 user unknown")."""
    given, said = _ENHANCED.search(field), _ENHANCED.search(diagnostic)
    if given and said and given[2] == "0" and given[1] == said[1]:
        return said[0]
    code = given or said
    if code:
        return code[0]
    reply = _REPLY.search(diagnostic)
    return f"{reply[1][0]}.0.0" if reply else ""


def _action(field: str, status: str) -> Action:
    try:
        return Action(field.partition(" ")[0].lower())
    except ValueError:
        # Required by RFC 3464, yet sometimes missing or misspelt: the status class still tells.
        return {"2": Action.DELIVERED, "4": Action.DELAYED}.get(status[:1], Action.FAILED)


def _payload_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _quoted_headers(part: Message) -> Message | None:
    if part.get_content_type() == "text/rfc822-headers":
        return BytesHeaderParser(policy=policy.default).parsebytes(_payload_bytes(part))
    if part.get_content_type() == "message/rfc822" and part.is_multipart():
        inner = part.get_payload(0)
        return inner if isinstance(inner, Message) else None
    return None


def quoted_original(message: Message) -> Message | None:
    """The original's headers as a report quotes them (message/rfc822 or text/rfc822-headers)."""
    for part in message.walk():
        headers = _quoted_headers(part)
        if headers is not None:
            return headers
    return None


def _original_id(message: Message) -> str | None:
    """The Message-ID in the quoted original."""
    headers = quoted_original(message)
    found = _MESSAGE_ID.search(str(headers.get("Message-ID", ""))) if headers else None
    return found[0] if found else None


def addresses_in(*values: object) -> list[str]:
    """Every address in these header values, in order, as written."""
    return [found for value in values for found in _ADDRESS.findall(_words(value))]


def returned_to(message: Message) -> tuple[str, ...]:
    """The addresses a report was delivered to, then the quoted original's Return-Path."""
    values: list[object] = [v for name in _DELIVERED_TO for v in message.get_all(name, [])]
    original = quoted_original(message)
    if original is not None:
        values.append(original.get("Return-Path"))
    return tuple(dict.fromkeys(addresses_in(*values)))


def _recipients(blocks: list[Message]) -> tuple[RecipientStatus, ...]:
    """The per-recipient field blocks that follow the per-message block (RFC 3464 2.2)."""
    found = []
    for block in blocks[1:]:
        # Original-Recipient is the address as we gave it; Final-Recipient may be an alias's target.
        original, final = block.get("Original-Recipient"), block.get("Final-Recipient")
        recipient = _address(original) or _address(final)
        if not recipient:
            continue  # a trailing empty block, as Exchange writes one
        diagnostic = _DIAGNOSTIC_TYPE.sub("", _words(block.get("Diagnostic-Code")))
        status = _status(_words(block.get("Status")), diagnostic)
        action = _action(_words(block.get("Action")), status)
        found.append(RecipientStatus(recipient, action, status, diagnostic))
    return tuple(found)


def _plain_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            data = _payload_bytes(part)
            try:
                return data.decode(part.get_content_charset() or "utf-8", "replace")
            except LookupError:  # a charset Python does not know
                return data.decode("utf-8", "replace")
    return ""


def _from_text(message: Message) -> BounceReport | None:
    """The fallback for bounces that are only prose, such as qmail's "failure notice"."""
    if not (
        _DAEMON.search(_words(message.get("From")))
        or _BOUNCE_SUBJECT.search(_words(message.get("Subject")))
    ):
        return None
    text = _plain_text(message)
    mark = _COPY_MARK.search(text)
    notice, copy = (text[: mark.start()], text[mark.end() :]) if mark else (text, text)
    reply = _REPLY.search(notice)
    if reply is None:
        return None
    ours = set(_ADDRESS.findall(_words(message.get("To"))))
    failed = _ADDRESS.findall(_words(message.get("X-Failed-Recipients")))
    named = failed or [address for address in _ADDRESS.findall(notice) if address not in ours]
    recipient = named[0] if named else ""
    status = reply[2] or f"{reply[1][0]}.0.0"
    action = Action.FAILED if status.startswith("5") else Action.DELAYED
    quoted = _ORIGINAL_ID_LINE.search(copy)
    return BounceReport(
        recipients=(RecipientStatus(recipient, action, status, reply[0].strip()),),
        original_message_id=_original_id(message) or (quoted[1] if quoted else None),
        structured=False,
        returned_to=returned_to(message),
    )


def parse_report(raw: bytes) -> BounceReport | None:
    """Read one message: a BounceReport if it is a bounce, None for any other mail (a reader's
    reply, a spam complaint, a read receipt), so a whole mailbox can be fed through."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    if message.get_content_type() != "multipart/report":
        return _from_text(message)
    report_type = message.get_param("report-type")
    if not isinstance(report_type, str) or report_type.lower() != "delivery-status":
        return None  # feedback-report (ARF) or disposition-notification (MDN): not bounces
    for part in message.walk():
        payload = part.get_payload()
        if part.get_content_type() == "message/delivery-status" and isinstance(payload, list):
            # The email package has already split the part into its blocks of fields.
            blocks = [block for block in payload if isinstance(block, Message)]
            return BounceReport(
                recipients=_recipients(blocks),
                original_message_id=_original_id(message),
                structured=True,
                returned_to=returned_to(message),
            )
    return _from_text(message)  # labelled a report but without the machine-readable part
