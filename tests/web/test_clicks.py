"""Counted links, end to end: a real send through aiosmtpd, the captured mail parsed with
`email`, its links followed against the Starlette app, and the counts read back."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from digest.config import Settings
from digest.models import Edition, Tracking
from digest.operations.archive import editor_preview
from digest.operations.publisher import Publisher
from digest.operations.stats import edition_stats
from digest.store import ClickRow, Store
from digest.web import create_app
from digest.web.clicks_writer import ClickWriter
from tests.conftest import DIGEST_READER, NOW, RecordingHandler, SeededTemplates
from tests.support.cli import run

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"
HTML_LINK = re.compile(r'href="(https://[^"]+/c/[^"]+)"')
TEXT_LINK = re.compile(r"<(https://[^>]+/c/[^>]+)>")


@dataclass
class Sent:
    """A seeded daily send: the store, the edition, the captured mails, and a web client whose
    clock stands `later` after the last delivery."""

    settings: Settings
    store: Store
    edition: Edition
    handler: RecordingHandler
    clock: list[datetime]

    def client(self) -> TestClient:
        app = create_app(self.settings, clock=lambda: self.clock[0])
        return TestClient(app, follow_redirects=False)

    def links(self, address: str = DIGEST_READER) -> tuple[list[str], list[str]]:
        """The counted links of the reader's copy: (HTML part, text part), in order."""
        (received,) = self.handler.for_address(address)
        message = received.message
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        assert text is not None and html is not None
        return HTML_LINK.findall(html.get_content()), TEXT_LINK.findall(text.get_content())


def send(
    settings: Settings,
    seeded_templates: SeededTemplates,
    handler: RecordingHandler,
    **list_changes: Any,
) -> Sent:
    lists = tuple(item.model_copy(update=list_changes) for item in settings.lists)
    settings = settings.model_copy(update={"lists": lists})
    seeded_templates.copy_into(settings)
    publisher = Publisher(settings)
    result = publisher.send("daily", now=NOW)
    assert result.edition is not None
    store = publisher.store
    delivered = store.delivered_at(result.edition.id, None)
    assert delivered is not None
    return Sent(settings, store, result.edition, handler, [delivered + timedelta(hours=1)])


@pytest.fixture
def sent(
    settings: Settings,
    seeded_templates: SeededTemplates,
    smtp_server: tuple[RecordingHandler, int],
) -> Sent:
    return send(settings, seeded_templates, smtp_server[0])


@pytest.fixture
def make_send(
    settings: Settings,
    seeded_templates: SeededTemplates,
    smtp_server: tuple[RecordingHandler, int],
) -> Callable[..., Sent]:
    return lambda **changes: send(settings, seeded_templates, smtp_server[0], **changes)


def path(link: str) -> str:
    return urlsplit(link).path


def written(client: TestClient) -> None:
    """Until the clicks the app answered are in the store (they are written behind the 302)."""
    assert client.portal is not None
    client.portal.call(client.app.state.ctx.click_writer.flush)  # type: ignore[attr-defined]


def distinct_articles(links: list[str]) -> list[str]:
    """One link per article (a card links its article from the image, the title and more)."""
    return list(dict.fromkeys(links))


def test_three_followed_links_and_one_head_are_three_human_clicks_and_one_machine(
    sent: Sent,
) -> None:
    html_links, _ = sent.links()
    first, second, third = distinct_articles(html_links)[:3]
    with sent.client() as client:
        for link in (first, second, third):
            answer = client.get(path(link), headers={"user-agent": BROWSER})
            assert answer.status_code == 302
            assert answer.headers["location"].startswith("https://budapestpost.example/")
        assert client.head(path(first), headers={"user-agent": BROWSER}).status_code == 302
    env = {"DIGEST_DATABASE_URL": sent.settings.database_url}
    done = run("stats", str(sent.edition.id), "--json", env=env)
    assert done.returncode == 0, done.stderr
    numbers = json.loads(done.stdout)
    assert (numbers["clicks"], numbers["machine_clicks"]) == (3, 1)
    assert numbers["delivered"] == len(sent.handler.messages)
    assert sum(a["human"] for a in numbers["articles"]) == 3
    assert sorted(a["human"] for a in numbers["articles"] if a["human"]) == [1, 1, 1]
    assert "opens" not in numbers


def test_the_link_leads_to_the_article_and_both_parts_carry_the_same_links(sent: Sent) -> None:
    html_links, text_links = sent.links()
    assert distinct_articles(text_links) == distinct_articles(html_links)
    articles = {a.id: a.url for a in sent.store.articles_by_id(sent.edition.article_ids)}
    with sent.client() as client:
        targets = [
            client.get(path(link), headers={"user-agent": BROWSER}).headers["location"]
            for link in distinct_articles(text_links)
        ]
    assert set(targets) <= set(articles.values())
    assert len(set(targets)) == len(distinct_articles(text_links))
    (received,) = sent.handler.for_address(DIGEST_READER)
    body = received.message.get_body(("html",))
    assert body is not None
    assert "/o/" not in body.get_content()  # no open pixel by default


def _altered(link: str) -> str:
    head, token, reader = path(link).rsplit("/", 2)
    flipped = token[:5] + ("B" if token[5] == "A" else "A") + token[6:]
    return f"{head}/{flipped}/{reader}"


@pytest.mark.parametrize(
    "forge",
    [
        _altered,
        lambda link: path(link).rsplit("/", 2)[0] + "/AQGyx9ZbW4y2/-",
        lambda link: path(link).rsplit("/", 1)[0] + "/AQFvdGhlcg",
        lambda link: "/c/%2F%2Fevil.example/-",
    ],
    ids=["one-character-changed", "made-up-token", "forged-reader", "url-as-token"],
)
def test_a_forged_or_altered_token_answers_404_without_location(
    sent: Sent, forge: Callable[[str], str]
) -> None:
    html_links, _ = sent.links()
    with sent.client() as client:
        for method in ("GET", "HEAD"):
            answer = client.request(method, forge(html_links[0]), headers={"user-agent": BROWSER})
            assert answer.status_code == 404
            assert "location" not in answer.headers
    assert edition_stats(sent.store, sent.edition).machine_clicks == 0
    assert edition_stats(sent.store, sent.edition).clicks == 0


@pytest.mark.parametrize(
    ("agent", "after", "reason"),
    [
        ("Mozilla/5.0 (compatible; Mimecast URL Protect)", timedelta(hours=1), "scanner"),
        ("Mozilla/5.0 (Windows NT 10.0) BingPreview/1.0b", timedelta(hours=1), "scanner"),
        ("", timedelta(hours=1), "scanner"),
        (BROWSER, timedelta(seconds=3), "early"),
    ],
    ids=["mimecast", "defender-preview", "no-agent", "within-machine-window"],
)
def test_scanner_and_early_clicks_count_as_machine(
    sent: Sent, agent: str, after: timedelta, reason: str
) -> None:
    delivered = sent.store.delivered_at(sent.edition.id, None)
    assert delivered is not None
    sent.clock[0] = delivered + after
    html_links, _ = sent.links()
    with sent.client() as client:
        assert client.get(path(html_links[0]), headers={"user-agent": agent}).status_code == 302
    numbers = edition_stats(sent.store, sent.edition)
    assert (numbers.clicks, numbers.machine_clicks) == (0, 1)


def test_per_subscriber_links_name_the_reader_and_a_copy_clicking_everything_is_a_machine(
    make_send: Callable[..., Sent],
) -> None:
    sent = make_send(tracking=Tracking.PER_SUBSCRIBER)
    mine, _ = sent.links()
    others = {
        link.rsplit("/", 1)[1]
        for m in sent.handler.messages
        for link in HTML_LINK.findall((m.message.get_body(("html",)) or m.message).get_content())
    }
    assert len(others) == len(sent.handler.messages)  # one reader part per copy
    links = distinct_articles(mine)
    with sent.client() as client:
        assert client.get(path(links[0]), headers={"user-agent": BROWSER}).status_code == 302
        written(client)
        numbers = edition_stats(sent.store, sent.edition)
        assert (numbers.clicks, numbers.machine_clicks) == (1, 0)
        # Later, a scanner follows three links of the same copy within one second.
        sent.clock[0] += timedelta(minutes=5)
        for link in links[1:4]:
            sent.clock[0] += timedelta(milliseconds=200)
            assert client.get(path(link), headers={"user-agent": BROWSER}).status_code == 302
    numbers = edition_stats(sent.store, sent.edition)
    assert (numbers.clicks, numbers.machine_clicks) == (1, 3)


def test_per_subscriber_copy_is_counted_early_against_its_own_delivery(
    make_send: Callable[..., Sent],
) -> None:
    sent = make_send(tracking=Tracking.PER_SUBSCRIBER, machine_window=30)
    mine, _ = sent.links()
    subscriber = sent.store.subscriber_by_email(DIGEST_READER)
    own = sent.store.delivered_at(sent.edition.id, subscriber.id)
    assert own is not None
    sent.clock[0] = own + timedelta(seconds=20)
    with sent.client() as client:
        client.get(path(mine[0]), headers={"user-agent": BROWSER})
        sent.clock[0] = own + timedelta(seconds=40)
        client.get(path(distinct_articles(mine)[1]), headers={"user-agent": BROWSER})
    numbers = edition_stats(sent.store, sent.edition)
    assert (numbers.clicks, numbers.machine_clicks) == (1, 1)


def test_tracking_off_leaves_the_article_urls_alone(make_send: Callable[..., Sent]) -> None:
    sent = make_send(tracking=Tracking.OFF, opens=True)
    html_links, text_links = sent.links()
    assert html_links == text_links == []
    (received,) = sent.handler.for_address(DIGEST_READER)
    text = received.message.get_body(("plain",))
    assert text is not None
    urls = [a.url for a in sent.store.articles_by_id(sent.edition.article_ids)]
    assert all(f"<{url}>" in text.get_content() for url in urls)


def test_opens_only_when_asked_and_labelled_unreliable(make_send: Callable[..., Sent]) -> None:
    sent = make_send(opens=True)
    (received,) = sent.handler.for_address(DIGEST_READER)
    html = received.message.get_body(("html",))
    assert html is not None
    (pixel,) = re.findall(r'src="(https://[^"]+/o/[^"]+)"', html.get_content())
    with sent.client() as client:
        answer = client.get(path(pixel), headers={"user-agent": BROWSER})
        assert answer.headers["content-type"] == "image/gif"
    numbers = edition_stats(sent.store, sent.edition, opens=True)
    assert numbers.opens == 1 and numbers.clicks == 0


@pytest.mark.parametrize(
    "tracking", [Tracking.AGGREGATE, Tracking.PER_SUBSCRIBER], ids=["aggregate", "per-subscriber"]
)
def test_archive_clicks_count_apart_from_the_mail_and_preview_clicks_not_at_all(
    make_send: Callable[..., Sent], tracking: Tracking
) -> None:
    sent = make_send(tracking=tracking)
    day = sent.edition.edition_date.isoformat()
    preview = editor_preview(
        sent.settings, sent.store, Publisher(sent.settings).renderer, "daily", now=NOW
    )
    previewed = distinct_articles(HTML_LINK.findall(preview.html))
    assert previewed and all(link.endswith("/preview") for link in previewed)
    articles = {a.url for a in sent.store.articles_by_id(sent.edition.article_ids)}
    with sent.client() as client:
        page = client.get(f"/archive/daily/{day}")
        assert page.status_code == 200
        archived = distinct_articles(HTML_LINK.findall(page.text))
        assert archived and all(link.endswith("/archive") for link in archived)
        for link, agent in ((archived[0], BROWSER), (archived[1], "Googlebot/2.1")):
            answer = client.get(path(link), headers={"user-agent": agent})
            assert answer.status_code == 302 and answer.headers["location"] in articles
        answer = client.get(path(previewed[0]), headers={"user-agent": BROWSER})
        assert answer.status_code == 302 and answer.headers["location"] in articles
        html_links, _ = sent.links()
        assert client.get(path(html_links[0]), headers={"user-agent": BROWSER}).status_code == 302
    numbers = edition_stats(sent.store, sent.edition)
    assert (numbers.clicks, numbers.machine_clicks, numbers.archive_clicks) == (1, 0, 1)
    assert sum(a.archive for a in numbers.articles) == 1  # the crawler's click is not counted


def test_clicks_are_answered_before_they_are_written_and_written_on_a_clean_stop(
    sent: Sent,
) -> None:
    html_links, _ = sent.links()
    links = distinct_articles(html_links)[:2]
    app = create_app(sent.settings, clock=lambda: sent.clock[0])
    gate = threading.Event()

    def slow(rows: Sequence[ClickRow]) -> None:  # a database busy with a send
        assert gate.wait(30)
        sent.store.record_clicks(rows)

    app.state.ctx.click_writer = ClickWriter(slow)
    with TestClient(app, follow_redirects=False) as client:
        for link in links:
            assert client.get(path(link), headers={"user-agent": BROWSER}).status_code == 302
        assert edition_stats(sent.store, sent.edition).clicks == 0  # the 302s did not wait
        gate.set()
    assert edition_stats(sent.store, sent.edition).clicks == 2  # the stop wrote them


def test_readers_delivery_times_are_read_together(make_send: Callable[..., Sent]) -> None:
    sent = make_send(tracking=Tracking.PER_SUBSCRIBER)
    readers = [sent.store.subscriber_by_email(a).id for m in sent.handler.messages
               for a in m.recipients][:3]  # fmt: skip
    edition = sent.edition.id
    asked = [(edition, reader) for reader in readers] + [(edition, 10**9), (edition + 1, 1)]
    found = sent.store.delivery_times(asked)
    assert found == {(edition, r): sent.store.delivered_at(edition, r) for r in readers}
