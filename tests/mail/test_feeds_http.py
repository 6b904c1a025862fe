"""Polling over real HTTP: a local http.server in a thread, real SQLite and PostgreSQL, no mocks."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.config import FeedRules, FeedSettings, FeedsSettings
from digest.errors import FeedError
from digest.mail.fetching import fetch
from digest.operations.ingest import PollStatus, import_source, poll_feeds
from digest.store import Store
from digest.store.schema import feed_state
from tests.conftest import ROOT
from tests.support.feed_server import FeedServer, Route

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LAST_MODIFIED = "Wed, 25 Nov 2026 18:00:00 GMT"
# The test servers listen on loopback, which feeds may reach only when allowed.
LOCAL = FeedsSettings(allow_private=True)


def feeds(server: FeedServer, *paths: str, timeout: float = 5.0) -> FeedsSettings:
    sources = tuple(
        FeedSettings(name=path.strip("/").split(".")[0], url=server.url(path)) for path in paths
    )
    return FeedsSettings(timeout=timeout, sources=sources, allow_private=True)


def state_of(store: Store, url: str) -> dict[str, object]:
    with store.engine.connect() as connection:
        row = connection.execute(select(feed_state).where(feed_state.c.url == url)).mappings().one()
    return dict(row)


def stored_rows(store: Store) -> list[tuple[object, ...]]:
    with store.engine.connect() as connection:
        return [
            tuple(row) for row in connection.exec_driver_sql("SELECT * FROM articles ORDER BY id")
        ]


def test_a_second_poll_is_conditional_and_a_304_changes_nothing(
    server: FeedServer, store: Store
) -> None:
    server.routes["/politics.xml"] = Route(
        body=(FEEDS / "rss.xml").read_bytes(), etag='"v1"', last_modified=LAST_MODIFIED
    )
    server.routes["/business.xml"] = Route(
        body=(FEEDS / "atom.xml").read_bytes(), last_modified=LAST_MODIFIED
    )
    settings = feeds(server, "/politics.xml", "/business.xml")

    first = poll_feeds(settings, store, now=NOW)
    assert [(r.feed, r.status, r.new) for r in first] == [
        ("politics", PollStatus.FETCHED, 2),
        ("business", PollStatus.FETCHED, 2),
    ]
    assert "If-None-Match" not in server.headers_of("/politics.xml")[0]
    before = stored_rows(store)

    later = NOW + timedelta(minutes=15)
    second = poll_feeds(settings, store, now=later)
    assert [r.status for r in second] == [PollStatus.NOT_MODIFIED, PollStatus.NOT_MODIFIED]
    politics = server.headers_of("/politics.xml")[1]
    assert politics["If-None-Match"] == '"v1"'
    assert politics["If-Modified-Since"] == LAST_MODIFIED
    assert "If-None-Match" not in server.headers_of("/business.xml")[1]
    assert server.headers_of("/business.xml")[1]["If-Modified-Since"] == LAST_MODIFIED
    assert stored_rows(store) == before
    assert state_of(store, server.url("/politics.xml")) == {
        "url": server.url("/politics.xml"),
        "etag": '"v1"',
        "last_modified": LAST_MODIFIED,
        "last_polled": later,
        "last_error": None,
    }


def test_one_failing_feed_does_not_stop_the_others(server: FeedServer, store: Store) -> None:
    server.routes["/good.xml"] = Route(body=(FEEDS / "rss.xml").read_bytes())
    server.routes["/down.xml"] = Route(body=b"oops", status=500)
    server.routes["/broken.xml"] = Route(
        body=(FEEDS / "broken" / "invalid.xml").read_bytes(), etag='"b1"'
    )
    server.routes["/slow.xml"] = Route(hang=True)
    server.routes["/culture.xml"] = Route(body=(FEEDS / "feed.json").read_bytes())
    settings = feeds(
        server, "/good.xml", "/down.xml", "/broken.xml", "/slow.xml", "/culture.xml", timeout=0.5
    )

    reports = poll_feeds(settings, store, now=NOW)

    assert [(r.feed, r.status) for r in reports] == [
        ("good", PollStatus.FETCHED),
        ("down", PollStatus.FAILED),
        ("broken", PollStatus.FAILED),
        ("slow", PollStatus.FAILED),
        ("culture", PollStatus.FETCHED),
    ]
    assert reports[1].error == f"{server.url('/down.xml')}: HTTP 500 Internal Server Error"
    broken = f"feed 'broken' ({server.url('/broken.xml')})"
    assert reports[2].error == f"{broken}: not well-formed XML: line 6: mismatched tag"
    assert reports[3].error == f"{server.url('/slow.xml')}: no answer within 0.5 s"
    assert len(reports[4].warnings) == 2 and reports[4].new == 2
    assert len(store.articles_published(after=NOW - timedelta(days=7), until=NOW)) == 4
    # A feed that failed keeps no validators from the bad answer: the next poll reads it whole.
    assert state_of(store, server.url("/broken.xml"))["etag"] is None
    assert state_of(store, server.url("/broken.xml"))["last_error"] == reports[2].error


def test_validators_of_a_good_answer_survive_a_later_failure(
    server: FeedServer, store: Store
) -> None:
    server.routes["/politics.xml"] = Route(body=(FEEDS / "rss.xml").read_bytes(), etag='"v1"')
    settings = feeds(server, "/politics.xml")
    poll_feeds(settings, store, now=NOW)
    server.routes["/politics.xml"] = Route(body=b"<rss><channel><item></rss>", etag='"v2"')

    (report,) = poll_feeds(settings, store, now=NOW + timedelta(minutes=15))

    assert report.status == PollStatus.FAILED
    assert store.feed_validators(server.url("/politics.xml")) == ('"v1"', None)


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (
            Route(body=b"<rss/>", headers={"Content-Length": str(50 * 1024 * 1024)}),
            "body of 52428800 bytes is over",
        ),
        (Route(stream=50 * 1024 * 1024), "body is over the 5000000-byte cap"),
    ],
    ids=["declared-50mb", "streamed-50mb-without-length"],
)
def test_a_body_over_the_size_cap_is_refused(
    server: FeedServer, route: Route, message: str
) -> None:
    server.routes["/huge.xml"] = route
    with pytest.raises(FeedError, match=message):
        fetch(server.url("/huge.xml"), limits=LOCAL)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        (
            "ftp://budapestpost.example/feed.xml",
            "redirected to 'ftp://budapestpost.example/feed.xml', not an http",
        ),
        ("file:///etc/passwd", "redirected to 'file:///etc/passwd', not an http"),
    ],
    ids=["ftp", "file"],
)
def test_a_redirect_to_a_non_http_url_is_refused(
    server: FeedServer, location: str, message: str
) -> None:
    server.routes["/moved.xml"] = Route(status=302, headers={"Location": location})
    with pytest.raises(FeedError, match=message):
        fetch(server.url("/moved.xml"), limits=LOCAL)


def test_import_from_a_url_fetches_unconditionally_and_resolves_relative_links(
    server: FeedServer, store: Store
) -> None:
    server.routes["/business.xml"] = Route(body=(FEEDS / "atom.xml").read_bytes(), etag='"a1"')
    store.record_feed_poll(
        server.url("/business.xml"), now=NOW, etag='"a1"', last_modified=None, error=None
    )

    report = import_source(
        server.url("/business.xml"),
        rules=FeedRules(name="biz"),
        limits=LOCAL,
        store=store,
        now=NOW,
    )

    assert (report.status, report.new) == (PollStatus.FETCHED, 2)
    (headers,) = server.headers_of("/business.xml")
    assert "If-None-Match" not in headers
    assert headers["User-Agent"] == "digest-feeds/0.1"
    forint = store.articles_published(after=NOW - timedelta(days=1), until=NOW)[-1]
    # Relative URLs in feed content resolve against the feed's own address.
    assert forint.image_url == server.url("/img/forint.png")


def test_each_feeds_state_is_shown_by_status_and_articles_feeds(
    server: FeedServer, store: Store, database_url: str, tmp_path: Path
) -> None:
    server.routes["/good.xml"] = Route(body=(FEEDS / "rss.xml").read_bytes())
    server.routes["/broken.xml"] = Route(body=(FEEDS / "broken" / "invalid.xml").read_bytes())
    settings = feeds(server, "/good.xml", "/broken.xml")
    good, broken = poll_feeds(settings, store, now=NOW)
    assert broken.error
    config = tmp_path / "digest.toml"
    sources = "".join(
        f'[[feeds.sources]]\nname = "{name}"\nurl = "{url}"\n'
        for name, url in (
            ("good", server.url("/good.xml")),
            ("broken", server.url("/broken.xml")),
            ("later", server.url("/later.xml")),
        )
    )
    config.write_text(f'database_url = "{database_url}"\n{sources}', encoding="utf-8")

    def digest(*args: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", "digest", "--config", str(config), *args],
            capture_output=True,
            check=False,
            text=True,
            cwd=ROOT,
            timeout=60,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    polled = f"{NOW:%Y-%m-%d %H:%M}"
    assert digest("articles", "feeds") == [
        f"good\t{server.url('/good.xml')}\t{polled}\t{good.new} articles\tok",
        f"broken\t{server.url('/broken.xml')}\t{polled}\t0 articles\tfailed: {broken.error}",
        f"later\t{server.url('/later.xml')}\tnever polled\t0 articles",
    ]
    shown = [line.split(None, 2) for line in digest("status") if line.startswith("feed ")]
    assert [(words[1], words[2].split()[:1]) for words in shown] == [
        ("good", [server.url("/good.xml")]),
        ("broken", [server.url("/broken.xml")]),
        ("later", [server.url("/later.xml")]),
    ]
    assert " ".join(shown[0][2].split()).endswith(f"{polled} {good.new} articles ok")
    assert f"failed: {broken.error}" in " ".join(shown[1][2].split())
    assert "never polled" in shown[2][2]
