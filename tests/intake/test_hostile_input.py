"""Hostile article text goes out harmless: escaped in HTML, literal in text, never a header."""

from __future__ import annotations

from datetime import timedelta

import pytest
from lxml import html as lxml_html

from digest.edition.render import Renderer, _autoescape
from digest.intake.articles import article_from_record
from digest.operations.publisher import Publisher
from tests.conftest import NOW, ROOT, RecordingHandler, decoded_header

SCRIPT = "<script>alert(1)</script> Árvíztűrő ő"
CRLF = "Breaking\r\nBcc: evil@example.com\r\n\r\nbody"


def test_select_autoescape_would_miss_our_template_names() -> None:
    from jinja2 import select_autoescape

    assert select_autoescape()("digest.html.j2") is False  # the trap
    assert _autoescape("digest.html.j2") is True
    assert _autoescape("digest.txt.j2") is False
    renderer = Renderer(ROOT / "templates")
    assert renderer.env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"


def test_hostile_titles_are_neutralised(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    hostile = [
        article_from_record(
            {
                "id": "bp-hostile-script",
                "title": SCRIPT,
                "summary": "<img src=x onerror=alert(1)>",
                "section": "Hungary",
                "url": "https://budapestpost.example/hungary/x",
                "lead": True,
                "published_at": (NOW - timedelta(minutes=5)).isoformat(),
            },
            now=NOW,
        ),
        article_from_record(
            {
                "id": "bp-hostile-crlf",
                "title": CRLF,
                "summary": "s",
                "section": "Hungary",
                "url": "https://budapestpost.example/hungary/y",
                "published_at": (NOW - timedelta(minutes=6)).isoformat(),
            },
            now=NOW,
        ),
    ]
    assert hostile[1].title == "Breaking Bcc: evil@example.com body"
    publisher.store.save_articles(hostile, now=NOW, update_existing=False)
    publisher.send("daily", now=NOW)
    for received in smtp_server[0].messages:
        head = received.data.partition(b"\r\n\r\n")[0]
        assert b"\nBcc:" not in head and not head.startswith(b"Bcc:")
        message = received.message
        assert decoded_header(received.data, "Subject").endswith(
            SCRIPT
        )  # the lead's title, as text
        html_part = message.get_body(("html",)).get_content()
        document = lxml_html.fromstring(html_part)
        assert not document.findall(".//script")
        assert not [e for e in document.iter() if e.get("onerror")]
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_part
        assert SCRIPT in document.text_content()
        text = message.get_body(("plain",)).get_content()
        assert SCRIPT in " ".join(text.split())
        assert "Breaking Bcc: evil@example.com body" in " ".join(text.split())


@pytest.mark.parametrize(
    ("stored", "to", "greeting"),
    [
        (
            "Emma\r\nBcc: evil@example.com",
            '"Emma Bcc: evil@example.com" <emma.clarke@example.com>',
            "Emma Bcc: evil@example.com",
        ),
        ("\u202eEmma\u202c\u2028Clarke", "Emma Clarke <emma.clarke@example.com>", "Emma Clarke"),
        ("\u202e\u2028\x85\x01", "emma.clarke@example.com", "reader"),
    ],
    ids=["crlf", "bidi-and-line-separator", "nothing-usable"],
)
def test_a_stored_name_is_cleaned_or_dropped_and_the_delivery_goes_out(
    publisher: Publisher,
    smtp_server: tuple[RecordingHandler, int],
    stored: str,
    to: str,
    greeting: str,
) -> None:
    from sqlalchemy import update

    from digest.models import DeliveryState
    from digest.store.schema import subscribers

    # Written straight into the database, past the import's validation.
    with publisher.store.engine.begin() as tx:
        tx.execute(
            update(subscribers)
            .where(subscribers.c.email_key == "emma.clarke@example.com")
            .values(name=stored)
        )
    result = publisher.send("daily", now=NOW)
    assert DeliveryState.FAILED not in result.report.counts
    (received,) = smtp_server[0].for_address("emma.clarke@example.com")
    message = received.message
    assert "Bcc" not in message
    assert str(message["To"]) == to
    text = message.get_body(("plain",)).get_content()
    assert f"Dear {greeting}," in text
