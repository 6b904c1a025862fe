"""Message building: bytes that any parser reads back exactly, and no header injection."""

from __future__ import annotations

import quopri
import random
from datetime import UTC, datetime
from email import policy, quoprimime
from email.header import decode_header, make_header
from email.parser import BytesParser

import pytest

from digest.edition.message import _QP_LINE, ListIdentity, MessageTemplate, Recipient, Sender, _qp
from digest.edition.render import slot_marker
from digest.errors import HeaderInjectionError

NONCE = "0123456789abcdef"


def template(
    subject: str = "Daily",
    html: str | None = None,
    text: str | None = None,
    sender_name: str = "Budapest Post",
) -> MessageTemplate:
    greeting, unsubscribe = slot_marker(NONCE, "greeting"), slot_marker(NONCE, "unsubscribe")
    return MessageTemplate(
        sender=Sender(name=sender_name, address="news@budapestpost.example"),
        identity=ListIdentity(
            slug="daily",
            name="Napi hírlevél",
            mail_domain="budapestpost.example",
            base_url="https://budapestpost.example",
        ),
        subject=subject,
        html_body=html
        if html is not None
        else f'<p>Dear {greeting},</p><a href="{unsubscribe}">Unsubscribe</a>',
        text_body=text if text is not None else f"Dear {greeting},\nUnsubscribe: {unsubscribe}\n",
        nonce=NONCE,
        feedback_id="20260302:daily:digest:budapestpost",
    )


def recipient(
    name: str = "Győri Ödön", address: str = "odon@example.hu", preferences: str = "PREFS"
) -> Recipient:
    return Recipient(
        address=address,
        name=name,
        greeting_name=name or "reader",
        message_id="<a.1@budapestpost.example>",
        unsubscribe_token="TOKEN",
        preferences_token=preferences,
    )


@pytest.mark.parametrize(
    "text",
    [
        ".leading dot",
        "a\n.dot after break",
        "." * 200,
        "x" * 75 + "\n." + "ő" * 40,
        "tab\tand trailing space \n",
        "=3D literal",
        "",
    ],
    ids=[
        "dot",
        "dot-after-break",
        "dots-only",
        "dot-long-multibyte",
        "whitespace",
        "equals",
        "empty",
    ],
)
def test_qp_round_trips_in_short_lines(text: str) -> None:
    encoded = _qp(text)
    lines = encoded.split(b"\r\n")
    assert all(len(line) <= 76 for line in lines)
    assert quopri.decodestring(encoded.replace(b"\r\n", b"\n")).decode("utf-8") == text.replace(
        "\r\n", "\n"
    ) or (
        text.endswith(" \n")
        and quopri.decodestring(encoded.replace(b"\r\n", b"\n")).decode() == text
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Győri Ödön", "Győri Ödön"),
        ("Hartmann, Jürgen", "Hartmann, Jürgen"),
        ('Kate "K" O\'Neil', 'Kate "K" O\'Neil'),
        ("", ""),
        ("Ő" * 60, "Ő" * 60),
    ],
    ids=["hungarian", "comma-non-ascii", "ascii-specials", "no-name", "long-non-ascii"],
)
def test_to_header_round_trips(name: str, expected: str) -> None:
    data = template().personalise(recipient(name=name), date=datetime(2026, 3, 2, 6, tzinfo=UTC))
    head = data.partition(b"\r\n\r\n")[0]
    assert head.isascii()
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    message = BytesParser(policy=policy.default).parsebytes(data)
    (address,) = message["To"].addresses
    assert address.addr_spec == "odon@example.hu"
    if len(expected.encode()) > 45:
        # Several encoded words: Python 3.11's address parser puts a space between them, but
        # RFC 2047 6.2 says readers join adjacent words, as decode_header does.
        raw = BytesParser(policy=policy.compat32).parsebytes(data)["To"]
        assert str(make_header(decode_header(raw))) == f"{expected} <odon@example.hu>"
    else:
        assert address.display_name == expected


def test_slots_are_escaped_per_part() -> None:
    hostile = '<b>Eve</b> & "co"'
    message = BytesParser(policy=policy.default).parsebytes(
        template().personalise(recipient(name=hostile), date=datetime(2026, 3, 2, tzinfo=UTC))
    )
    html_part = message.get_body(("html",)).get_content()
    assert "&lt;b&gt;Eve&lt;/b&gt; &amp; &quot;co&quot;" in html_part
    assert "<b>" not in html_part
    assert f"Dear {hostile}," in message.get_body(("plain",)).get_content()
    assert 'href="https://budapestpost.example/u/daily/TOKEN"' in html_part


def test_preferences_slot_is_filled_in_both_parts_and_escaped_in_html() -> None:
    prefs = slot_marker(NONCE, "preferences")
    made = template(
        html=f'<a href="{prefs}">Manage your subscription</a>',
        text=f"Manage your subscription: {prefs}\n",
    )
    data = made.personalise(recipient(preferences="a&b<c"), date=datetime(2026, 3, 2, tzinfo=UTC))
    message = BytesParser(policy=policy.default).parsebytes(data)
    url = "https://budapestpost.example/preferences/a"
    text_part = message.get_body(("plain",)).get_content()
    assert text_part.splitlines() == [f"Manage your subscription: {url}&b<c"]
    html_part = message.get_body(("html",)).get_content()
    assert html_part == f'<a href="{url}&amp;b&lt;c">Manage your subscription</a>'


@pytest.mark.parametrize("length", [74, 75, 76, 77, 151, 152], ids=lambda n: f"{n}-chars")
def test_slot_values_of_any_length_keep_lines_within_76_octets(length: int) -> None:
    token = "T" * (length - len("https://budapestpost.example/preferences/"))
    made = template(text=f"{slot_marker(NONCE, 'preferences')}\n")
    data = made.personalise(recipient(preferences=token), date=datetime(2026, 3, 2, tzinfo=UTC))
    body = data.partition(b"\r\n\r\n")[2]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    message = BytesParser(policy=policy.default).parsebytes(data)
    url = f"https://budapestpost.example/preferences/{token}"
    assert len(url) == length
    assert message.get_body(("plain",)).get_content().splitlines() == [url]


@pytest.mark.parametrize(
    "field",
    ["subject", "sender_name"],
    ids=["subject", "from-name"],
)
@pytest.mark.parametrize(
    "bad",
    ["x\r\nBcc: evil@example.com", "x\nBcc: evil@example.com", "x\x00y"],
    ids=["crlf", "lf", "nul"],
)
def test_header_values_with_cr_lf_or_nul_are_refused(field: str, bad: str) -> None:
    with pytest.raises(HeaderInjectionError, match="CR, LF or NUL"):
        template(**{field: bad})


def test_recipient_name_with_crlf_is_refused() -> None:
    with pytest.raises(HeaderInjectionError):
        template().personalise(
            recipient(name="Eve\r\nBcc: evil@example.com"), date=datetime(2026, 3, 2, tzinfo=UTC)
        )


def test_list_id_phrase_is_encoded_and_decodes() -> None:
    message = BytesParser(policy=policy.default).parsebytes(
        template().personalise(recipient(), date=datetime(2026, 3, 2, tzinfo=UTC))
    )
    assert message["List-Id"] == "Napi hírlevél <daily.budapestpost.example>"


def test_text_quoted_printable_leaves_alone_is_written_exactly_as_the_encoder_would() -> None:
    # The short cut for plain values (URLs, tokens, ASCII names) must not change a byte.
    alphabet = "ab.= \tőZ9-_/:?&~!<>" + "x" * 10
    chance = random.Random(20261204)
    texts = [
        "".join(chance.choice(alphabet) for _ in range(chance.randint(1, 80))) for _ in range(3000)
    ]
    texts += ["x" * n for n in range(70, 78)] + ["a b", "a ", " a", ".a", "a.", "https://x/u/d/T-_"]
    for width in (_QP_LINE, _QP_LINE - 1):
        for text in texts:
            slow = quoprimime.body_encode(
                text.encode("utf-8").decode("latin-1"), maxlinelen=width - 2, eol="\r\n"
            )
            slow = ("=2E" + slow[1:] if slow.startswith(".") else slow).replace("\r\n.", "\r\n=2E")
            assert _qp(text, width) == slow.encode("ascii"), (text, width)
