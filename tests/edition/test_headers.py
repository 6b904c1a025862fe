"""Hand-built headers: folded at 78 columns, hostile names cleaned, and every value read back."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from digest.edition.message import ListIdentity, MessageTemplate, Recipient, Sender
from digest.edition.names import clean_name
from digest.edition.render import slot_marker
from tests.conftest import decoded_header

NONCE = "0123456789abcdef"
# As long as a real token: base64url of 26 bytes.
TOKEN = "AQEAAAAAAAAAAX_26lirGz3DZqsP69dWncs"
URL = f"https://budapestpost.example/u/daily/{TOKEN}"
MAILTO = f"mailto:unsubscribe+daily.{TOKEN}@budapestpost.example"
MAILTO_LINE = f" <{MAILTO}>".encode()
LONG_LIST_NAME = "Budapesti Hírlap – napi összefoglaló a hét legfontosabb híreiből, reggelente"

NAMES = [
    ("Győri Ödön", "Győri Ödön"),
    ("Ő" * 70, "Ő" * 70),
    ("Szőke Tímea Erzsébet " * 6, ("Szőke Tímea Erzsébet " * 6).strip()),
    ("x" * 120, "x" * 120),
    ('Kate "K" O\'Neil', 'Kate "K" O\'Neil'),
    ("A. B. " * 20, ("A. B. " * 20).strip()),
    ("Eve\u2028Bcc: evil@example.com", "Eve Bcc: evil@example.com"),
    ("Eve\r\nBcc: evil@example.com", "Eve Bcc: evil@example.com"),
    ("Ödön\u0085Győri", "Ödön Győri"),
    ("\u202eAnna\u202c Kiss\u2066\u2069", "Anna Kiss"),
    ("=?utf-8?b?RXZlDQpCY2M6IGV2aWxAZXhhbXBsZS5jb20=?=", None),
    ("=?utf-8?q?Eve=0D=0ABcc:_evil@example.com?=", None),
    ("📰 Olvasó", "📰 Olvasó"),
]
NAME_IDS = [
    "hungarian",
    "one-long-word",
    "long-hungarian",
    "long-ascii-atom",
    "quotes",
    "long-ascii-specials",
    "line-separator",
    "crlf",
    "next-line",
    "bidi-overrides",
    "b-encoded-word-lookalike",
    "q-encoded-word-lookalike",
    "emoji",
]


def template(
    *, sender_name: str = "Budapest Post", list_name: str = "Napi hírlevél"
) -> MessageTemplate:
    greeting = slot_marker(NONCE, "greeting")
    return MessageTemplate(
        sender=Sender(name=sender_name, address="newsletter@budapestpost.example"),
        identity=ListIdentity(
            slug="daily",
            name=list_name,
            mail_domain="budapestpost.example",
            base_url="https://budapestpost.example",
        ),
        subject="Budapest Post Daily: Győri Ödön és a főváros – hétfői összefoglaló",
        html_body=f"<p>Dear {greeting},</p>",
        text_body=f"Dear {greeting},\n",
        nonce=NONCE,
        feedback_id="20260302:daily:digest:budapestpost",
    )


def personalised(made: MessageTemplate, name: str) -> bytes:
    return made.personalise(
        Recipient(
            address="odon@example.hu",
            name=name,
            greeting_name=name or "reader",
            message_id="<a.1@budapestpost.example>",
            unsubscribe_token=TOKEN,
            preferences_token="PREFS",
        ),
        date=datetime(2026, 3, 2, 6, tzinfo=UTC),
    )


def header_lines(data: bytes) -> list[bytes]:
    return data.partition(b"\r\n\r\n")[0].split(b"\r\n")


def long_lines(data: bytes) -> list[bytes]:
    """Header lines over 78 octets. A URI is never split (folding whitespace inside one
    breaks one-click), so with a real token only the mailto URI, 83 characters, passes 78."""
    return [line for line in header_lines(data) if len(line) > 78]


def parsed(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize(("raw", "expected"), NAMES, ids=NAME_IDS)
def test_to_is_folded_within_78_and_the_name_reads_back(raw: str, expected: str | None) -> None:
    name = clean_name(raw)
    shown = raw if expected is None else expected
    assert name == shown
    data = personalised(template(), name)
    assert data.partition(b"\r\n\r\n")[0].isascii()
    assert long_lines(data) == [MAILTO_LINE]
    message = parsed(data)
    assert "Bcc" not in message
    (address,) = message["To"].addresses
    assert address.addr_spec == "odon@example.hu"
    assert not {"\r", "\n"} & set(address.display_name)
    # RFC 2047 6.2: readers join adjacent encoded words (decode_header does; Python 3.11's
    # address parser puts a space between them, so the exact name is read with decode_header).
    # A quoted string is not decoded by decode_header, but the address parser reads it.
    assert (
        address.display_name == shown or decoded_header(data, "To") == f"{shown} <odon@example.hu>"
    )


@pytest.mark.parametrize(
    "raw",
    ["=?utf-8?b?RXZlDQpCY2M6IGV2aWxAZXhhbXBsZS5jb20=?=", "Eve =?utf-8?q?=0D=0A?= Kiss"],
    ids=["whole-name", "inside-name"],
)
def test_a_name_that_looks_like_an_encoded_word_is_encoded_itself(raw: str) -> None:
    data = personalised(template(), raw)
    assert raw.encode() not in data.partition(b"\r\n\r\n")[0]
    assert decoded_header(data, "To") == f"{raw} <odon@example.hu>"


@pytest.mark.parametrize(
    "raw",
    ["\u202e\u2028\u0085", "\x00\x1f\x7f", "\ud800 Eve", "   "],
    ids=["only-separators", "only-controls", "lone-surrogate", "blank"],
)
def test_a_name_with_nothing_usable_left_is_no_name(raw: str) -> None:
    assert clean_name(raw) == ""
    data = personalised(template(), clean_name(raw))
    assert parsed(data)["To"] == "odon@example.hu"
    assert parsed(data).get_body(("plain",)).get_content().splitlines() == ["Dear reader,"]


def test_from_and_list_id_with_long_encoded_names_fold_within_78() -> None:
    data = personalised(
        template(
            sender_name="Budapesti Hírlap Kiadó – Hírlevélszerkesztőség", list_name=LONG_LIST_NAME
        ),
        "Győri Ödön",
    )
    assert long_lines(data) == [MAILTO_LINE]
    assert decoded_header(data, "List-Id") == f"{LONG_LIST_NAME} <daily.budapestpost.example>"
    assert decoded_header(data, "From") == (
        "Budapesti Hírlap Kiadó – Hírlevélszerkesztőség <newsletter@budapestpost.example>"
    )
    assert parsed(data)["Subject"] == (
        "Budapest Post Daily: Győri Ödön és a főváros – hétfői összefoglaló"
    )


def test_list_unsubscribe_folds_after_the_comma_and_keeps_each_uri_whole() -> None:
    data = personalised(template(), "Győri Ödön")
    lines = header_lines(data)
    start = next(i for i, line in enumerate(lines) if line.startswith(b"List-Unsubscribe:"))
    assert lines[start : start + 3] == [
        b"List-Unsubscribe:",
        f" <{URL}>,".encode(),
        f" <{MAILTO}>".encode(),
    ]
    assert long_lines(data) == [MAILTO_LINE]
    (value,) = parsed(data).get_all("List-Unsubscribe")
    # RFC 5322 unfolding makes "List-Unsubscribe:" CRLF SP "<..." the usual one space after
    # the colon; Python keeps that space as part of the value.
    assert value.strip() == f"<{URL}>, <{MAILTO}>"
