"""Standards-correct MIME messages, built once per edition and personalised as bytes.

`MessageTemplate` serialises everything that is the same for every subscriber once: the fixed
headers and both quoted-printable bodies, split around the per-subscriber slots. `personalise`
then only writes Date, To, Message-ID and List-Unsubscribe and drops the QP-encoded greeting and
unsubscribe URL into the slots: no `EmailMessage`, no template and no CSS work per subscriber.

The bytes use CRLF, every line is at most 78 octets except List-Unsubscribe (at most 998), the
whole message is 7-bit, and no line starts with "." (it is written =2E), so the data can go to
SMTP without dot-stuffing.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from datetime import datetime
from email import quoprimime
from email.headerregistry import Address
from email.policy import SMTP
from email.utils import format_datetime

from digest.errors import HeaderInjectionError
from digest.render import slot_pattern

_UNSAFE = re.compile(r"[\r\n\x00]")
_ATEXT_PHRASE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+$")
_QP_LINE = 76
# One encoded word holds at most 75 characters: 12 of overhead plus base64 of 45 bytes.
_WORD_BYTES = 45


def check_header(name: str, value: str) -> str:
    """Refuse a header value holding CR, LF or NUL: it could smuggle in headers of its own."""
    if _UNSAFE.search(value):
        raise HeaderInjectionError(f"the {name} header value {value[:60]!r} contains CR, LF or NUL")
    return value


def _fold(name: str, value: str) -> bytes:
    check_header(name, value)
    return SMTP.header_factory(name, value).fold(policy=SMTP).encode("ascii")


def _encoded_words(text: str) -> str:
    """RFC 2047 base64 words, each at most 75 characters, never splitting a character."""
    words, chunk = [], b""
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word).decode()}?=" for word in words)


def _mailbox(name: str, address: str) -> str:
    """`Name <address>` for a header, fast for the common cases, exact for the rest."""
    check_header("To", name)
    check_header("To", address)
    if not name:
        return address
    if _ATEXT_PHRASE.match(name):
        return f"{name} <{address}>"
    if name.isascii():
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    return f"{_encoded_words(name)} <{address}>"


def _qp(text: str) -> bytes:
    """Quoted-printable UTF-8 with CRLF and no line that begins with a dot."""
    if not text:
        return b""
    encoded = quoprimime.body_encode(text.encode("utf-8").decode("latin-1"), maxlinelen=_QP_LINE, eol="\r\n")
    lines = [("=2E" + line[1:]) if line.startswith(".") else line for line in encoded.split("\r\n")]
    return "\r\n".join(lines).encode("ascii")


@dataclass(frozen=True, slots=True)
class _Part:
    """A QP-encoded body with holes: literal[0], slot[0], literal[1], ... literal[n]."""

    literals: tuple[bytes, ...]
    slots: tuple[str, ...]
    escape_html: bool

    @classmethod
    def build(cls, body: str, nonce: str, *, escape_html: bool) -> _Part:
        pieces = slot_pattern(nonce).split(body.replace("\r\n", "\n"))
        literals = tuple(_qp(piece) for piece in pieces[0::2])
        return cls(literals=literals, slots=tuple(pieces[1::2]), escape_html=escape_html)

    def fill(self, values: dict[str, str]) -> bytes:
        out = [self.literals[0]]
        for slot, literal in zip(self.slots, self.literals[1:], strict=True):
            value = values[slot]
            if self.escape_html:
                value = html.escape(value, quote=True)
            # Soft line breaks around the value keep every line within 76 octets.
            out += [b"=\r\n", _qp(value), b"=\r\n", literal]
        return b"".join(out)


@dataclass(frozen=True, slots=True)
class Sender:
    """Who a list's mail is from."""

    name: str
    address: str
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class ListIdentity:
    """The list as headers name it: RFC 2919 List-Id and the one-click unsubscribe endpoints."""

    slug: str
    name: str
    mail_domain: str
    base_url: str

    def unsubscribe_url(self, token: str) -> str:
        """The https one-click URL (RFC 8058) that also sits in the footer."""
        return f"{self.base_url}/u/{self.slug}/{token}"

    def unsubscribe_mailto(self, token: str) -> str:
        """The mailto alternative, for clients that only mail."""
        return f"mailto:unsubscribe+{self.slug}.{token}@{self.mail_domain}"


@dataclass(frozen=True, slots=True)
class Recipient:
    """One subscriber's per-message values."""

    address: str
    name: str
    greeting_name: str
    message_id: str
    unsubscribe_token: str


class MessageTemplate:
    """One edition's message, serialised once, personalised per subscriber as bytes."""

    def __init__(
        self,
        *,
        sender: Sender,
        identity: ListIdentity,
        subject: str,
        html_body: str,
        text_body: str,
        nonce: str,
        feedback_id: str,
    ) -> None:
        self.identity = identity
        self.sender = sender
        boundary = f"=_digest_{nonce}"
        list_id = f"{check_header('List-Id', identity.name)} <{identity.slug}.{identity.mail_domain}>"
        fixed = [
            _fold("From", str(Address(display_name=check_header("From", sender.name), addr_spec=sender.address))),
            _fold("Reply-To", sender.reply_to) if sender.reply_to else b"",
            _fold("Subject", subject),
            _fold("List-Id", list_id),
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            _fold("Feedback-ID", feedback_id),
            b"Auto-Submitted: auto-generated\r\n",
            b"MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'.encode(),
            b"\r\n",
        ]
        self._fixed_headers = b"".join(fixed)
        delimiter = f"\r\n--{boundary}\r\n".encode()
        self._preamble = f"--{boundary}\r\n".encode()
        self._text = _Part.build(text_body, nonce, escape_html=False)
        self._between = delimiter
        self._html = _Part.build(html_body, nonce, escape_html=True)
        self._end = f"\r\n--{boundary}--\r\n".encode()
        self._text_head = b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        self._html_head = b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'

    def personalise(self, recipient: Recipient, *, date: datetime) -> bytes:
        """The complete message for one subscriber, ready for SMTP DATA."""
        url = self.identity.unsubscribe_url(recipient.unsubscribe_token)
        mailto = self.identity.unsubscribe_mailto(recipient.unsubscribe_token)
        # Built by hand: the policy's folding would RFC 2047-encode a long URL (EMAIL.md #20).
        unsubscribe = check_header("List-Unsubscribe", f"<{url}>, <{mailto}>")
        head = (
            f"Date: {format_datetime(date)}\r\n"
            f"To: {_mailbox(recipient.name, recipient.address)}\r\n"
            f"Message-ID: {check_header('Message-ID', recipient.message_id)}\r\n"
            f"List-Unsubscribe: {unsubscribe}\r\n"
        ).encode("ascii")
        values = {"greeting": recipient.greeting_name, "unsubscribe": url}
        return b"".join(
            (
                head,
                self._fixed_headers,
                self._preamble,
                self._text_head,
                self._text.fill(values),
                self._between,
                self._html_head,
                self._html.fill(values),
                self._end,
            )
        )
