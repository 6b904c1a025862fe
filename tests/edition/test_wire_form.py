"""Our messages need no SMTP dot-stuffing: a line that would start with "." is encoded, so the
transport sends the bytes as they are, and readers still see the dot."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

from digest.edition.render import slot_marker
from digest.mail.transport import dot_stuffed
from tests.edition.test_message import NONCE, recipient, template


def test_css_rules_and_dotted_lines_leave_nothing_to_stuff() -> None:
    greeting = slot_marker(NONCE, "greeting")
    html = f"<style>\n.lead {{ color: red }}\n.card {{ margin: 0 }}\n</style><p>Dear {greeting}</p>"
    text = f".Dear {greeting}\n.\n..two dots\n" + "x" * 74 + ".\n"
    message = template(html=html, text=text).personalise(
        recipient(name=".Dot Person"), date=datetime(2026, 12, 4, tzinfo=UTC)
    )
    assert b"\r\n." not in message and not message.startswith(b".")
    assert dot_stuffed(message) is message  # sent without a copy
    body = message.split(b"\r\n\r\n", 1)[1]
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))  # RFC 2045 6.7
    parsed = BytesParser(policy=policy.default).parsebytes(message)
    body_text = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")
    body_html = parsed.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert body_text.startswith(".Dear .Dot Person\n.\n..two dots\n" + "x" * 74 + ".\n")
    assert "\n.lead { color: red }\n.card { margin: 0 }\n" in body_html
    assert "Dear .Dot Person" in body_html


def test_other_data_is_still_stuffed() -> None:
    assert dot_stuffed(b"a\r\n.b\r\n") == b"a\r\n..b\r\n"
    assert dot_stuffed(b".a") == b"..a\r\n"
    assert dot_stuffed(b"a\n.b\r\n") == b"a\n.b\r\n"  # a bare LF ends no SMTP line
