"""Article pages' images over real HTTP: the og:image of a new item that names no image of its
own, read through the feed fetcher's guard and limits; real SQLite and PostgreSQL, no mocks."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest.cli import commands
from digest.config import FeedSettings, FeedsSettings
from digest.errors import FeedError
from digest.mail.fetching import fetch_page_head
from digest.models import Article
from digest.operations.ingest import PollStatus, poll_feeds
from digest.store import Store
from digest.store.schema import make_engine, upgrade
from tests.support.feed_server import FeedServer, Route, serving

PAGES = Path(__file__).resolve().parents[1] / "fixtures" / "feeds" / "pages"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HTML = {"Content-Type": "text/html; charset=utf-8"}
PAGE_LOG = "digest.operations.page_images"


def page(name: str) -> Route:
    return Route(body=(PAGES / name).read_bytes(), headers=HTML)


def settings(server: FeedServer, path: str, **limits: object) -> FeedsSettings:
    feed = FeedSettings(name="pages", url=server.url(path))
    return FeedsSettings.model_validate(
        {"sources": (feed,), "allow_private": True, "page_timeout": 0.5, **limits}
    )


def images(store: Store) -> dict[str, tuple[str | None, str]]:
    """Each stored article's (image URL, alt), by the last part of its URL."""
    stored = store.articles_published(after=NOW - timedelta(days=30), until=NOW + timedelta(days=1))
    return {a.url.rsplit("/", 1)[1]: (a.image_url, a.image_alt) for a in stored}


def serve_pages(server: FeedServer) -> None:
    server.routes["/pages.xml"] = Route(body=(PAGES / "pages.xml").read_bytes(), etag='"p1"')
    server.routes["/a/og"] = page("og.html")
    server.routes["/a/enclosure"] = page("og.html")  # read, it would give its og:image
    server.routes["/a/media"] = page("og.html")
    server.routes["/a/pixel"] = page("pixel.html")
    server.routes["/a/hang"] = Route(hang=True)
    server.routes["/a/pdf"] = Route(body=b"%PDF-1.7", headers={"Content-Type": "application/pdf"})
    server.routes["/a/twitter"] = page("twitter.html")


def test_a_new_item_without_an_image_gets_its_pages_og_image(
    server: FeedServer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    serve_pages(server)

    with caplog.at_level(logging.WARNING, logger=PAGE_LOG):
        (report,) = poll_feeds(settings(server, "/pages.xml"), store, now=NOW)

    assert (report.status, report.new) == (PollStatus.FETCHED, 8)
    assert images(store) == {
        # The page's og:image (relative: resolved against the page) beats the text's <img>.
        "og": (server.url("/img/og.jpg"), "The chamber at night"),
        # The item's own image: its page is not read.
        "enclosure": (server.url("/img/enclosure.jpg"), ""),
        "media": (server.url("/img/media.jpg"), ""),
        # A counting pixel, a 1x1 spacer and an emoji are passed over for the text's image.
        "pixel": (server.url("/img/text-pixel.jpg"), "The real one"),
        # A page that fails costs only its image: the text's, or none.
        "missing": (server.url("/img/text-missing.jpg"), "Still here"),
        "hang": (None, ""),
        "pdf": (server.url("/img/text-pdf.jpg"), ""),
        "twitter": ("https://cdn.budapestpost.example/card.jpg", ""),
    }
    pages = sorted(path for path in server.paths() if path.startswith("/a/"))
    assert pages == ["/a/hang", "/a/missing", "/a/og", "/a/pdf", "/a/pixel", "/a/twitter"]
    assert server.headers_of("/a/og")[0]["User-Agent"] == "digest-feeds/0.1"
    warned = sorted(r.getMessage() for r in caplog.records if r.name == PAGE_LOG)
    assert warned == [
        f"feed 'pages': no image from the article page: {server.url('/a/hang')}: "
        "no answer within 0.5 s",
        f"feed 'pages': no image from the article page: {server.url('/a/missing')}: "
        "HTTP 404 Not Found",
        f"feed 'pages': no image from the article page: {server.url('/a/pdf')}: "
        "not an HTML page (application/pdf)",
    ]


def test_a_later_poll_reads_no_stored_items_page_and_keeps_its_image(
    server: FeedServer, store: Store
) -> None:
    serve_pages(server)
    limits = settings(server, "/pages.xml")
    poll_feeds(limits, store, now=NOW)
    before = images(store)
    read = len(server.paths())
    body = (PAGES / "pages.xml").read_text(encoding="utf-8")
    added = "<item><title>Later</title><link>/a/later</link><guid>pages-later</guid></item>"
    server.routes["/pages.xml"] = Route(
        body=body.replace("</channel>", f"{added}</channel>").encode(), etag='"p2"'
    )
    server.routes["/a/later"] = page("twitter.html")

    (report,) = poll_feeds(limits, store, now=NOW + timedelta(minutes=15))

    assert (report.new, report.updated, report.unchanged) == (1, 0, 8)
    assert server.paths()[read:] == ["/pages.xml", "/a/later"]
    assert images(store) == {**before, "later": ("https://cdn.budapestpost.example/card.jpg", "")}


def test_a_json_feed_items_own_image_needs_no_page(server: FeedServer, store: Store) -> None:
    server.routes["/feed.json"] = Route(body=(PAGES / "feed.json").read_bytes())
    server.routes["/a/og"] = page("og.html")
    server.routes["/a/json-image"] = page("og.html")

    poll_feeds(settings(server, "/feed.json"), store, now=NOW)

    assert images(store) == {
        "json-image": (server.url("/img/json.jpg"), ""),
        "og": (server.url("/img/og.jpg"), "The chamber at night"),
    }
    assert "/a/json-image" not in server.paths()


def many_items(count: int) -> bytes:
    items = "".join(
        f"<item><title>Story {n}</title><link>/a/{n}</link><guid>story-{n}</guid>"
        f'<description>&lt;img src="/img/text-{n}.jpg"&gt;</description></item>'
        for n in range(1, count + 1)
    )
    return f'<rss version="2.0"><channel><title>Many</title>{items}</channel></rss>'.encode()


def test_the_page_cap_holds_and_every_item_is_stored(
    server: FeedServer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/many.xml"] = Route(body=many_items(7))
    for n in range(1, 8):
        server.routes[f"/a/{n}"] = page("og.html")

    with caplog.at_level(logging.WARNING, logger=PAGE_LOG):
        (report,) = poll_feeds(settings(server, "/many.xml", page_images=3), store, now=NOW)

    assert report.new == 7
    assert sorted(p for p in server.paths() if p.startswith("/a/")) == ["/a/1", "/a/2", "/a/3"]
    found = images(store)
    assert {found[str(n)][0] for n in (1, 2, 3)} == {server.url("/img/og.jpg")}
    assert [found[str(n)][0] for n in (4, 5, 6, 7)] == [
        server.url(f"/img/text-{n}.jpg") for n in (4, 5, 6, 7)
    ]
    assert [r.getMessage() for r in caplog.records if r.name == PAGE_LOG] == [
        "feed 'pages': 7 new items name no image; the pages of the first 3 are read"
        " ([feeds] page_images)"
    ]


def test_page_images_0_reads_no_page(server: FeedServer, store: Store) -> None:
    server.routes["/many.xml"] = Route(body=many_items(2))
    server.routes["/a/1"] = page("og.html")

    poll_feeds(settings(server, "/many.xml", page_images=0), store, now=NOW)

    assert server.paths() == ["/many.xml"]
    assert images(store)["1"] == (server.url("/img/text-1.jpg"), "")


def test_a_page_on_a_private_address_is_not_read_even_through_a_redirect(
    server: FeedServer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # The feed's own server is allowed by network; the pages point at another loopback address.
    with serving("127.0.0.2") as inside:
        inside.routes["/a/inside"] = page("og.html")
        inside.routes["/img/inside.jpg"] = Route(
            body=b"GIF89a", headers={"Content-Type": "image/gif"}
        )
        items = "".join(
            f"<item><title>{name}</title><link>{link}</link><guid>{name}</guid>"
            f'<description>&lt;img src="/img/text-{name}.jpg"&gt;</description></item>'
            for name, link in (
                ("direct", inside.url("/a/inside")),
                ("redirect", "/a/redirect"),
                ("pointing", "/a/pointing"),
            )
        )
        feed = f'<rss version="2.0"><channel><title>In</title>{items}</channel></rss>'
        server.routes["/in.xml"] = Route(body=feed.encode())
        server.routes["/a/redirect"] = Route(
            status=302, headers={"Location": inside.url("/a/inside")}
        )
        og = f'<html><head><meta property="og:image" content="{inside.url("/img/inside.jpg")}">'
        server.routes["/a/pointing"] = Route(body=og.encode(), headers=HTML)
        limits = FeedsSettings(
            sources=(FeedSettings(name="in", url=server.url("/in.xml")),),
            allow_networks=("127.0.0.1/32",),
            page_timeout=2.0,
        )

        with caplog.at_level(logging.WARNING, logger=PAGE_LOG):
            (report,) = poll_feeds(limits, store, now=NOW)

        assert (report.status, report.new) == (PollStatus.FETCHED, 3)
        assert inside.paths() == []  # neither the page nor the image named on a page is read
    found = images(store)
    # The text's relative <img> resolves against the feed, as feedparser reads it.
    assert found["inside"][0] == server.url("/img/text-direct.jpg")
    assert found["redirect"][0] == server.url("/img/text-redirect.jpg")
    # An image URL is only stored, never fetched: a page may name one anywhere.
    assert found["pointing"][0] == inside.url("/img/inside.jpg")
    warned = [r.getMessage() for r in caplog.records if r.name == PAGE_LOG]
    # One line per page, named by the page, also when the refusal came after its redirect.
    assert sorted(message.split(": ")[2] for message in warned) == [
        server.url("/a/redirect"),
        inside.url("/a/inside"),
    ]
    assert all("127.0.0.2, a loopback address" in message for message in warned)


def test_the_head_is_read_no_further_than_its_end_or_the_cap(server: FeedServer) -> None:
    head = (PAGES / "og.html").read_bytes().split(b"<body>")[0]
    server.routes["/long"] = Route(body=head, stream=50 * 1024 * 1024, headers=HTML)
    server.routes["/headless"] = Route(body=b"<html>", stream=50 * 1024 * 1024, headers=HTML)
    limits = FeedsSettings(allow_private=True, page_bytes=100_000)

    long = fetch_page_head(server.url("/long"), limits=limits)
    headless = fetch_page_head(server.url("/headless"), limits=limits)

    assert long.body.startswith(head) and b"</head>" in long.body
    assert len(long.body) < 100_000  # stopped at the end of the head, not the cap
    assert len(headless.body) == 100_000


def test_a_page_fetch_is_refused_on_this_machine_without_allow_private(server: FeedServer) -> None:
    server.routes["/a/og"] = page("og.html")
    with pytest.raises(FeedError, match="a loopback address"):
        fetch_page_head(server.url("/a/og"), limits=FeedsSettings())
    assert server.paths() == []


@pytest.mark.parametrize("page_images", ["20", "0"], ids=["default-on", "off"])
def test_articles_import_reads_pages_unless_turned_off(
    server: FeedServer, tmp_path: Path, page_images: str
) -> None:
    server.routes["/many.xml"] = Route(body=many_items(1))
    server.routes["/a/1"] = page("og.html")
    database = f"sqlite:///{tmp_path}/d.sqlite3"
    upgrade(make_engine(database), now=NOW)
    config = tmp_path / "digest.toml"
    config.write_text(
        f'database_url = "{database}"\n'
        f"[feeds]\nallow_private = true\npage_images = {page_images}\n",
        encoding="utf-8",
    )

    result = CliRunner().invoke(
        commands, ["--config", str(config), "articles", "import", server.url("/many.xml")]
    )

    assert result.exit_code == 0, result.output
    (article,) = Store(make_engine(database)).articles_published(
        after=NOW - timedelta(days=3650), until=datetime.now(UTC)
    )
    expected = "/img/og.jpg" if page_images != "0" else "/img/text-1.jpg"
    assert isinstance(article, Article) and article.image_url == server.url(expected)


def test_no_page_is_read_on_a_reserved_name(
    server: FeedServer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # The seeds' budapestpost.example and the tests' *.test hosts never reach a real site:
    # looking them up could only wait on a resolver, so their pages are not read at all.
    links = ["https://budapestpost.example/a/1", "http://news.test/a/2", "http://example.com/a/3"]
    items = "".join(
        f"<item><title>Story {n}</title><link>{link}</link><guid>reserved-{n}</guid>"
        f'<description>&lt;img src="https://img.example/{n}.jpg"&gt;</description></item>'
        for n, link in enumerate(links, 1)
    )
    server.routes["/reserved.xml"] = Route(
        body=f'<rss version="2.0"><channel><title>R</title>{items}</channel></rss>'.encode()
    )

    with caplog.at_level(logging.WARNING, logger=PAGE_LOG):
        (report,) = poll_feeds(settings(server, "/reserved.xml"), store, now=NOW)

    assert report.new == 3
    assert not caplog.records  # no page was tried, so none failed
    assert {image for image, _ in images(store).values()} == {
        f"https://img.example/{n}.jpg" for n in (1, 2, 3)
    }
