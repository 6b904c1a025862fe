"""Every digest carries the reader's own "Manage your subscription" link: sent through a real
SMTP server, read back from both parts, and followed against the web app on a real database."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from lxml import html as lxml_html
from starlette.testclient import TestClient

from digest.edition.locale import Catalogue, Words
from digest.operations.publisher import Publisher
from digest.web import create_app
from tests.conftest import NOW, ROOT, RecordingHandler, SeededTemplates
from tests.support.web import web_settings

BASE = "http://testserver"
READER = "odon.gyori@example.hu"  # a seeded reader, active on daily, business and weekly
OTHER = "reka.kovary@example.com"  # another seeded reader of daily
WORDS = Catalogue(ROOT / "templates")  # the footer's link texts, in each reader's language
PREFERENCES = re.compile(rf"{re.escape(BASE)}/preferences/[A-Za-z0-9_-]+")


@dataclass
class Site:
    publisher: Publisher
    client: TestClient
    mail: RecordingHandler

    def sent_to(self, address: str) -> EmailMessage:
        (received,) = self.mail.for_address(address)
        return received.message


@pytest.fixture
def site(
    tmp_path: Path,
    smtp_server: tuple[RecordingHandler, int],
    database_url: str,
    seeded_templates: SeededTemplates,
) -> Iterator[Site]:
    settings = web_settings(tmp_path, smtp_server[1], BASE, database_url=database_url)
    seeded_templates.copy_into(settings)
    publisher = Publisher(settings)
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        yield Site(publisher, client, smtp_server[0])


def links_by_text(document: str) -> dict[str, str]:
    """An HTML document's links by their text."""
    tree = lxml_html.fromstring(document)
    return {" ".join(a.text_content().split()): a.get("href", "") for a in tree.iter("a")}


def footer_links(message: EmailMessage) -> dict[str, str]:
    """The HTML part's links by their text."""
    part = message.get_body(("html",))
    assert part is not None
    return links_by_text(part.get_content())  # type: ignore[attr-defined]


def plain(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def words(message: EmailMessage) -> Words:
    """The fixed words of the language the copy is written in."""
    part = message.get_body(("html",))
    assert part is not None
    return WORDS[lxml_html.fromstring(part.get_content()).get("lang")]  # type: ignore[attr-defined]


def preferences_link(message: EmailMessage) -> str:
    """The link from the HTML footer, checked to be the very one the text part gives."""
    label = words(message).preferences
    html_link = footer_links(message)[label]
    text_links = PREFERENCES.findall(plain(message))
    assert text_links == [html_link], plain(message)
    assert f"{label}: {html_link}" in plain(message)
    return html_link


def test_each_digest_links_to_its_readers_own_preferences(site: Site) -> None:
    site.publisher.send("daily", now=NOW)
    mine, theirs = site.sent_to(READER), site.sent_to(OTHER)
    link = preferences_link(mine)
    assert link != preferences_link(theirs)
    assert footer_links(mine)[words(mine).unsubscribe].startswith(f"{BASE}/u/daily/")

    page = site.client.get(link.removeprefix(BASE))
    assert page.status_code == 200
    assert READER in page.text and OTHER not in page.text
    other_page = site.client.get(preferences_link(theirs).removeprefix(BASE))
    assert other_page.status_code == 200 and OTHER in other_page.text


@pytest.mark.parametrize(
    "tamper",
    [
        # Not the last character: it may carry only padding bits.
        lambda token: token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:],
        lambda token: token[:4] + ("A" if token[4] != "A" else "B") + token[5:],
        lambda token: token[:-2],
    ],
    ids=["mac-changed", "subscriber-changed", "cut-short"],
)
def test_a_tampered_preferences_link_opens_nobodys_page(
    site: Site, tamper: Callable[[str], str]
) -> None:
    site.publisher.send("daily", now=NOW)
    link = preferences_link(site.sent_to(READER))
    token = link.rsplit("/", 1)[1]
    page = site.client.get(f"/preferences/{tamper(token)}")
    assert page.status_code == 404
    assert READER not in page.text


def test_a_test_send_carries_the_addressees_link(site: Site) -> None:
    site.publisher.test_send("daily", to=READER, now=NOW)
    page = site.client.get(preferences_link(site.sent_to(READER)).removeprefix(BASE))
    assert page.status_code == 200 and READER in page.text


def test_a_preview_shows_the_previewed_readers_link(site: Site, tmp_path: Path) -> None:
    files = site.publisher.preview("daily", now=NOW, out_dir=tmp_path / "preview", subscriber=OTHER)
    html_file = files.html.read_text(encoding="utf-8")
    text_file = files.text.read_text(encoding="utf-8")
    (link,) = PREFERENCES.findall(text_file)
    label = WORDS[lxml_html.fromstring(html_file).get("lang")].preferences
    assert links_by_text(html_file)[label] == link
    assert "xdigestslot" not in html_file + text_file
    page = site.client.get(link.removeprefix(BASE))
    assert page.status_code == 200 and OTHER in page.text


def test_the_archive_carries_nobodys_preferences_link(site: Site) -> None:
    site.publisher.send("daily", now=NOW)
    page = site.client.get(f"/archive/daily/{NOW.date().isoformat()}")
    assert page.status_code == 200
    assert "/preferences/" not in page.text
    assert links_by_text(page.text)["Manage your subscription"] == f"{BASE}/unsubscribe"
    assert "Manage your subscription" in site.client.get("/unsubscribe").text
