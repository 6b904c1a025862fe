"""Standards-correct MIME messages, built once per edition and personalised as bytes.

`MessageTemplate` serialises everything that is the same for every subscriber once: the fixed
headers and both quoted-printable bodies, split around the per-subscriber slots. `personalise`
then only writes Date, To, Message-ID and List-Unsubscribe and drops the QP-encoded greeting,
unsubscribe URL and preferences URL into the slots: no `EmailMessage`, no template and no CSS
work per subscriber.

The bytes use CRLF, every line is at most 78 octets except one holding a URI longer than that
(never split, at most 998), and the whole message is 7-bit; the SMTP transport dot-stuffs them
as it sends.
"""

from __future__ import annotations

import base64
import functools
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import quoprimime
from email.utils import format_datetime

from digest.edition.render import slot_pattern
from digest.errors import HeaderInjectionError, InvalidInputError

_UNSAFE = re.compile(r"[\r\n\x00]")
_ATEXT_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")
_QP_LINE = 76
# Text quoted-printable leaves as it is on one line: printable ASCII but "=", inner spaces.
_QP_AS_IS = re.compile(r"[!-<>-~](?:[ !-<>-~]*[!-<>-~])?")
_LINE = 78  # RFC 5322 2.1.1: lines SHOULD be no longer than 78 characters
# An encoded word of 42 bytes is 68 characters (12 of overhead and 56 of base64), so one fits
# after "Reply-To: " and on a continuation line.
_WORD_BYTES = 42
_ITEM = 68


def check_header(name: str, value: str) -> str:
    """Refuse a header value holding CR, LF or NUL: it could smuggle in headers of its own."""
    if _UNSAFE.search(value):
        raise HeaderInjectionError(f"the {name} header value {value[:60]!r} contains CR, LF or NUL")
    return value


def _encoded_words(text: str) -> list[str]:
    """RFC 2047 base64 words of at most 68 characters each, never splitting a character.

    68 leaves room for the longest header name before the first word ("Reply-To: ").
    Adjacent words go on separate lines when folded; RFC 2047 6.2 makes readers join them.
    """
    words, chunk = [], b""
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(word).decode()}?=" for word in words]


def _fold(header: str, items: list[str]) -> str:
    """`Header: item item ...` with a fold before an item that would pass column 78.

    An item is never split, so only one longer than a whole line (a long URI) passes 78;
    one that does not fit after the name goes on the next line (RFC 5322 allows FWS there).
    """
    lines = [f"{header}:"]
    for item in items:
        if len(lines[-1]) + 1 + len(item) > _LINE:
            lines.append(" " + item)
        else:
            lines[-1] += " " + item
    return "\r\n".join(lines)


def _phrase(text: str) -> list[str]:
    """A display name as header phrase items: atoms, one quoted string, or RFC 2047 words.

    Text that looks like an encoded word (`=?...?=`) is itself encoded, so a reader that
    decodes words wherever it finds them shows it as typed instead of decoding it into
    CR, LF or another header.
    """
    if "=?" not in text:
        atoms = text.split()
        if _ATEXT_PHRASE.fullmatch(text) and all(len(atom) <= _ITEM for atom in atoms):
            return atoms
        quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if text.isascii() and len(quoted) <= _ITEM:
            return [quoted]
    return _encoded_words(text)


def _mailbox(header: str, name: str, address: str) -> str:
    """The folded `Header: Name <address>` line; the address must be ASCII (no SMTPUTF8)."""
    check_header(header, name)
    check_header(header, address)
    if not address.isascii():
        raise InvalidInputError(f"{address!r} needs SMTPUTF8, which digest does not use")
    if not name:
        return _fold(header, [address])
    return _fold(header, [*_phrase(name), f"<{address}>"])


def _unstructured(header: str, text: str) -> bytes:
    """An unstructured header (Subject) folded at 78 columns, non-ASCII runs as RFC 2047 words.

    A run of words that need encoding becomes one encoded text, so the spaces inside it
    survive: the email package's folder writes `=?..?= =?..?=` for two such words, and the
    space between adjacent encoded words is dropped by every reader (RFC 2047 6.2).
    """
    check_header(header, text)
    items: list[str] = []
    run: list[str] = []
    for word in text.split():
        if word.isascii() and "=?" not in word and len(word) <= _ITEM:
            if run:
                items += _encoded_words(" ".join(run))
                run = []
            items.append(word)
        else:
            run.append(word)
    if run:
        items += _encoded_words(" ".join(run))
    return (_fold(header, items) + "\r\n").encode("ascii")


@functools.lru_cache(maxsize=8)
def _date_field(moment: datetime) -> str:
    """The Date value, written once a second rather than once a message."""
    return format_datetime(moment)


def _list_unsubscribe(url: str, mailto: str) -> str:
    """RFC 2369 List-Unsubscribe, folded after the comma; the URIs themselves never fold
    (RFC 2047 words or folded whitespace inside a URI break one-click, EMAIL.md #20)."""
    check_header("List-Unsubscribe", url + mailto)
    return _fold("List-Unsubscribe", [f"<{url}>,", f"<{mailto}>"])


def _qp(text: str, width: int = _QP_LINE) -> bytes:
    """Quoted-printable UTF-8 with CRLF and lines of at most `width`.

    A line that would start with "." (CSS rules do) starts with its encoding "=2E" instead, so
    SMTP has nothing to dot-stuff in our messages and the transport sends them without a copy.
    """
    if not text:
        return b""
    if len(text) <= width - 2 and text[0] != "." and _QP_AS_IS.fullmatch(text):
        return text.encode("ascii")  # what the encoder would write, at a fraction of its cost
    encoded = quoprimime.body_encode(
        text.encode("utf-8").decode("latin-1"), maxlinelen=width - 2, eol="\r\n"
    )
    if encoded.startswith("."):
        encoded = "=2E" + encoded[1:]
    return encoded.replace("\r\n.", "\r\n=2E").encode("ascii")


def _part_head(content_type: str) -> bytes:
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii")


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

    def holes(self, values: dict[str, str]) -> list[bytes]:
        """What goes between the literals for these slot values, QP-encoded."""
        out = []
        for slot in self.slots:
            value = values[slot]
            if self.escape_html:
                value = html.escape(value, quote=True)
            # Soft line breaks around the value keep every line within 76 octets; the value's
            # own lines leave room for the "=" of the break that follows it.
            out.append(b"=\r\n" + _qp(value, _QP_LINE - 1) + b"=\r\n")
        return out


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

    def preferences_url(self, token: str) -> str:
        """The reader's own preferences page (every list and its sections), from the footer."""
        return f"{self.base_url}/preferences/{token}"


@dataclass(frozen=True, slots=True)
class Recipient:
    """One subscriber's per-message values."""

    address: str
    name: str
    greeting_name: str
    message_id: str
    unsubscribe_token: str
    preferences_token: str
    # Fills the counted links' reader part; "-" names nobody (tracking is not per subscriber).
    reader_token: str = "-"


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
        phrase = _phrase(check_header("List-Id", identity.name))
        list_id = _fold("List-Id", [*phrase, f"<{identity.slug}.{identity.mail_domain}>"])
        reply_to = f"{_mailbox('Reply-To', '', sender.reply_to)}\r\n" if sender.reply_to else ""
        fixed = [
            f"{_mailbox('From', sender.name, sender.address)}\r\n".encode("ascii"),
            reply_to.encode("ascii"),
            _unstructured("Subject", subject),
            f"{list_id}\r\n".encode("ascii"),
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            f"Feedback-ID: {check_header('Feedback-ID', feedback_id)}\r\n".encode("ascii"),
            b"Auto-Submitted: auto-generated\r\n",
            b"MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'.encode(),
            b"\r\n",
        ]
        # The header fields every subscriber gets, and the empty line that ends the header.
        self.fixed_head = b"".join(fixed)
        text, html_part = (
            _Part.build(text_body, nonce, escape_html=False),
            _Part.build(html_body, nonce, escape_html=True),
        )
        self._parts = (text, html_part)
        # The body as fixed segments with a hole between each two (the slots of both parts):
        # the signer hashes the fixed ones once per edition (digest.mail.bodyhash).
        texts, htmls = list(text.literals), list(html_part.literals)
        texts[0] = f"--{boundary}\r\n".encode() + _part_head("text/plain") + texts[0]
        htmls[0] = (
            texts.pop() + f"\r\n--{boundary}\r\n".encode() + _part_head("text/html") + htmls[0]
        )
        htmls[-1] += f"\r\n--{boundary}--\r\n".encode()
        self.segments: tuple[bytes, ...] = (*texts, *htmls)

    def slot_values(self, recipient: Recipient) -> dict[str, str]:
        """The subscriber's slot values, unescaped: the message and the preview fill the same."""
        return {
            "greeting": recipient.greeting_name,
            "unsubscribe": self.identity.unsubscribe_url(recipient.unsubscribe_token),
            "preferences": self.identity.preferences_url(recipient.preferences_token),
            "reader": recipient.reader_token,
        }

    def personal_parts(self, recipient: Recipient, *, date: datetime) -> tuple[bytes, list[bytes]]:
        """The subscriber's own header fields and the holes that go between `segments`: the
        message is those fields, `fixed_head`, and then segment, hole, segment, ... segment."""
        values = self.slot_values(recipient)
        url = values["unsubscribe"]
        mailto = self.identity.unsubscribe_mailto(recipient.unsubscribe_token)
        # Built by hand: the policy's folding would RFC 2047-encode a long URL (EMAIL.md #20).
        head = (
            f"Date: {_date_field(date.replace(microsecond=0))}\r\n"
            f"{_mailbox('To', recipient.name, recipient.address)}\r\n"
            f"Message-ID: {check_header('Message-ID', recipient.message_id)}\r\n"
            f"{_list_unsubscribe(url, mailto)}\r\n"
        ).encode("ascii")
        text, html_part = self._parts
        return head, text.holes(values) + html_part.holes(values)

    def personalise(self, recipient: Recipient, *, date: datetime) -> bytes:
        """The complete message for one subscriber, ready for SMTP DATA."""
        head, holes = self.personal_parts(recipient, date=date)
        return head + self.fixed_head + interleave(self.segments, holes)


def interleave(segments: tuple[bytes, ...], holes: Sequence[bytes]) -> bytes:
    """A body made of fixed segments with one hole between each two: segment, hole, ..."""
    out = [segments[0]]
    for hole, segment in zip(holes, segments[1:], strict=True):
        out += (hole, segment)
    return b"".join(out)
