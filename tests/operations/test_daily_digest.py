"""The seeded daily list, sent through a real SMTP server and checked as a mail client would."""

from __future__ import annotations

import csv
import re
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from lxml import html as lxml_html

from digest.models import DeliveryState
from digest.operations.publisher import Publisher
from tests.conftest import NOW, ROOT, RecordingHandler, decoded_header
from tests.support.clicks import counted

SINGLE = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
UNSUBSCRIBE = re.compile(r"^<(https://[^>\s]+)>, <(mailto:[^>\s]+)>$")


def expected_recipients(list_slug: str) -> set[str]:
    """Active, valid subscribers of a list, read straight from the seed files."""
    with (ROOT / "seeds" / "subscriptions.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {
        row["email"].lower()
        for row in rows
        if row["list"] == list_slug and row["status"] == "active" and row["email"].count("@") == 1
    }


def sent_daily(publisher: Publisher, server: RecordingHandler) -> dict[str, EmailMessage]:
    result = publisher.send("daily", now=NOW)
    assert result.created and result.edition is not None
    report = result.report
    assert set(report.counts) == {DeliveryState.SENT}, (report.counts, report.problems)
    return {m.recipients[0].lower(): m.message for m in server.messages}


@pytest.fixture
def delivered(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> dict[str, EmailMessage]:
    return sent_daily(publisher, smtp_server[0])


def test_one_message_per_active_valid_subscriber(
    publisher: Publisher,
    smtp_server: tuple[RecordingHandler, int],
    delivered: dict[str, EmailMessage],
) -> None:
    server = smtp_server[0]
    expected = expected_recipients("daily")
    assert "csaba.varga@example.hu" not in expected  # the seeds' unsubscribed reader
    assert set(delivered) == expected
    assert len(server.messages) == len(expected)
    assert all(len(m.recipients) == 1 for m in server.messages)
    assert not server.for_address("peter.kovacs@@example.hu")


def test_structure_and_headers(delivered: dict[str, EmailMessage]) -> None:
    for address, message in delivered.items():
        for name in SINGLE:
            assert len(message.get_all(name, [])) == 1, name
        assert message.get_content_type() == "multipart/alternative"
        parts = list(message.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        for part in parts:
            assert part.get_content_charset() == "utf-8"
            assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert message["From"].addresses[0].display_name == "Budapest Post"
        assert message["To"].addresses[0].addr_spec.lower() == address
        assert re.fullmatch(r"<[^@<>]+@budapestpost\.example>", message["Message-ID"])
        assert re.search(r"<daily\.budapestpost\.example>$", message["List-Id"])
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Auto-Submitted"] == "auto-generated"
        assert "Bcc" not in message and "Return-Path" not in message
        date = parsedate_to_datetime(message["Date"])
        assert date.tzinfo is not None


def test_bytes_are_7bit_with_short_lines(
    smtp_server: tuple[RecordingHandler, int], delivered: dict[str, EmailMessage]
) -> None:
    for received in smtp_server[0].messages:
        assert received.data.isascii()
        head, _, body = received.data.partition(b"\r\n\r\n")
        assert max(len(line) for line in body.split(b"\r\n")) <= 76
        lines = head.split(b"\r\n")
        for line in lines:
            # A URI is never split: only a line that is one URI, and nothing else, may be longer.
            whole_uri = line.startswith(b" <") and line.rstrip(b",").endswith(b">")
            assert len(line) <= (998 if whole_uri and b" " not in line[1:] else 78), line
        start = next(i for i, line in enumerate(lines) if line.startswith(b"List-Unsubscribe:"))
        assert b"=?" not in b"".join(lines[start : start + 3])


def test_styles_are_inlined_and_media_rules_kept(delivered: dict[str, EmailMessage]) -> None:
    message = next(iter(delivered.values()))
    document = lxml_html.fromstring(message.get_body(("html",)).get_content())
    # premailer's kept @media rules, then the dark-mode block it was told to leave as written.
    kept, dark = document.findall(".//style")
    assert "prefers-color-scheme" in (dark.text or "") and "[data-ogsc]" in (dark.text or "")
    css = re.sub(r"/\*.*?\*/", "", kept.text or "", flags=re.S)
    # Strip each @media block; nothing but white space may remain.
    depth, outside = 0, []
    for char in re.sub(r"@media[^{]*", "", css):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif depth == 0:
            outside.append(char)
    assert "".join(outside).strip() == ""
    assert "@media" in css
    assert all(element.get("style") for element in document.iter("td") if element.get("class"))
    assert not document.findall(".//link")


def test_every_title_and_url_in_both_parts(
    publisher: Publisher, delivered: dict[str, EmailMessage]
) -> None:
    edition = publisher.store.latest_edition("daily")
    assert edition is not None
    articles = publisher.store.articles_by_id(edition.article_ids)
    # max_articles counts stories; the "Also:" articles of a story come on top, in both parts.
    assert len(edition.stories) == 12 and len(articles) > 12
    for message in delivered.values():
        text = message.get_body(("plain",)).get_content()
        document = lxml_html.fromstring(message.get_body(("html",)).get_content())
        visible = " ".join(document.text_content().split())
        hrefs = {a.get("href") for a in document.iter("a")}
        unwrapped = " ".join(text.split())
        for article in articles:
            link = counted(
                publisher.settings, "daily", edition.edition_date, article.id, article.url
            )
            assert article.title in visible
            assert link in hrefs
            assert article.title in unwrapped
            assert f"<{link}>" in text


def test_unsubscribe_link_is_personal_and_matches_footer(
    delivered: dict[str, EmailMessage],
) -> None:
    seen = set()
    for message in delivered.values():
        match = UNSUBSCRIBE.match(" ".join(message["List-Unsubscribe"].split()))
        assert match, message["List-Unsubscribe"]
        url = match.group(1)
        document = lxml_html.fromstring(message.get_body(("html",)).get_content())
        assert url in {a.get("href") for a in document.iter("a")}
        assert url in message.get_body(("plain",)).get_content()
        seen.add(url)
    assert len(seen) == len(delivered)


def test_greeting_uses_the_name_escaped(delivered: dict[str, EmailMessage]) -> None:
    message = delivered["odon.gyori@example.hu"]
    assert "Kedves Győri Ödön!" in message.get_body(("plain",)).get_content()
    assert (
        "Győri Ödön"
        in lxml_html.fromstring(message.get_body(("html",)).get_content()).text_content()
    )
    assert message["To"].addresses[0].display_name == "Győri Ödön"


def test_hungarian_subject_round_trips(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int], database_url: str
) -> None:
    from tests.conftest import settings_for

    base = settings_for(tmp_path, smtp_server[1], database_url=database_url)
    subject = "Napi hírlevél – Árvíztűrő tükörfúrógép ő ű"
    lists = tuple(
        item.model_copy(update={"subject": subject}) if item.slug == "daily" else item
        for item in base.lists
    )
    publisher = Publisher(base.model_copy(update={"lists": lists}))
    publisher.init(seed=True, now=NOW)
    publisher.send("daily", now=NOW)
    received = smtp_server[0].messages[0]
    head = received.data.partition(b"\r\n\r\n")[0]
    subject_lines = re.search(rb"^Subject:.*?(?=\r\n\S)", head, re.S | re.M)
    assert subject_lines is not None
    assert all(
        len(word) <= 75
        for word in re.findall(rb"=\?[^?]+\?[bqBQ]\?[^?]*\?=", subject_lines.group(0))
    )
    assert decoded_header(received.data, "Subject") == subject


def test_second_send_sends_nothing(
    publisher: Publisher,
    smtp_server: tuple[RecordingHandler, int],
    delivered: dict[str, EmailMessage],
) -> None:
    server = smtp_server[0]
    count = len(server.messages)
    again = publisher.send("daily", now=NOW)
    assert not again.created
    assert again.queued == 0
    assert again.report.counts == {}
    assert len(server.messages) == count
    edition = publisher.store.latest_edition("daily")
    assert edition is not None
    assert publisher.store.delivery_counts(edition.id) == {DeliveryState.SENT: count}


def test_a_refused_recipient_is_recorded_and_the_others_delivered(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    server = smtp_server[0]
    server.refuse["emma.clarke@example.com"] = (
        "550 5.1.1 <emma.clarke@example.com>: Recipient address rejected: User unknown"
    )
    result = publisher.send("daily", now=NOW)
    expected = expected_recipients("daily")
    assert {m.recipients[0] for m in server.messages} == expected - {"emma.clarke@example.com"}
    assert result.report.counts == {DeliveryState.SENT: len(expected) - 1, DeliveryState.FAILED: 1}
    assert result.edition is not None
    rows = {row["email"]: row for row in publisher.store.deliveries(result.edition.id)}
    assert rows["emma.clarke@example.com"]["state"] == DeliveryState.FAILED
    assert "5.1.1" in rows["emma.clarke@example.com"]["last_reply"]
    # A mailbox that does not exist is not mailed again, on any list.
    assert "emma.clarke@example.com" not in {
        s.email for s in publisher.store.active_subscribers("weekly")
    }


def test_preview_eml_equals_the_sent_message_apart_from_date(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int], tmp_path: Path
) -> None:
    before = publisher.preview(
        "daily", now=NOW, out_dir=tmp_path / "before", subscriber="reka.kovary@example.com"
    )
    assert not before.stored
    publisher.send("daily", now=NOW)
    after = publisher.preview(
        "daily", now=NOW, out_dir=tmp_path / "after", subscriber="reka.kovary@example.com"
    )
    assert after.stored
    (sent,) = smtp_server[0].for_address("reka.kovary@example.com")

    def undated(data: bytes) -> bytes:
        return re.sub(rb"^Date: [^\r\n]*\r\n", b"", data, flags=re.M)

    assert undated(before.eml.read_bytes()) == undated(sent.data)
    assert undated(after.eml.read_bytes()) == undated(sent.data)
    html_file = before.html.read_text(encoding="utf-8")
    assert "xdigestslot" not in html_file and "Kőváry Réka" in html_file
    # A preview records nothing.
    assert publisher.store.delivery_counts(publisher.store.latest_edition("daily").id) == {
        DeliveryState.SENT: len(smtp_server[0].messages)
    }  # type: ignore[union-attr]


def test_nothing_new_means_no_edition(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    publisher.send("daily", now=NOW)
    count = len(smtp_server[0].messages)
    from datetime import timedelta

    tomorrow = publisher.send("daily", now=NOW + timedelta(days=1))
    assert tomorrow.nothing_new and tomorrow.edition is None
    assert len(smtp_server[0].messages) == count
    assert len(publisher.status()) == 1


def test_view_in_browser_links_to_the_archive(
    publisher: Publisher, delivered: dict[str, EmailMessage]
) -> None:
    edition = publisher.store.latest_edition("daily")
    assert edition is not None
    url = f"https://budapestpost.example/archive/daily/{edition.edition_date.isoformat()}"
    message = next(iter(delivered.values()))
    document = lxml_html.fromstring(message.get_body(("html",)).get_content())
    assert url in {a.get("href") for a in document.iter("a")}
    assert url in message.get_body(("plain",)).get_content()
