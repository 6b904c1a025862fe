"""Feeds into a real store (SQLite and PostgreSQL): identity across imports, updates, revisions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.config import FeedRules, FeedSettings, FeedsSettings
from digest.edition.selection import select_articles
from digest.errors import FeedError
from digest.intake.feeds import parse_feed
from digest.operations.ingest import PollStatus, import_source, poll_feeds
from digest.store import Store
from digest.store.schema import feed_state, make_engine, upgrade

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LIMITS = FeedsSettings()


@pytest.fixture
def store(database_url: str) -> Store:
    engine = make_engine(database_url)
    upgrade(engine, now=NOW)
    return Store(engine)


def atom(*, title: str, updated: str, published: str | None = "2026-11-26T06:00:00Z") -> bytes:
    published_tag = f"<published>{published}</published>" if published else ""
    return (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>B</title><id>f</id>'
        f"<updated>{updated}</updated><entry><id>e-1</id><title>{title}</title>"
        f'<link href="https://budapestpost.example/b/1"/>{published_tag}'
        f"<updated>{updated}</updated></entry></feed>"
    ).encode()


def save(store: Store, body: bytes, *, rules: FeedRules, now: datetime) -> dict[str, int]:
    parsed = parse_feed(body, rules=rules, now=now)
    return store.save_feed_articles([(item.key, item.article) for item in parsed.items], now=now)


def test_importing_a_file_twice_stores_each_item_once(store: Store) -> None:
    rules = FeedRules(name="bp", sections={"Politik": "Europe"})
    first = import_source(str(FEEDS / "rss.xml"), rules=rules, limits=LIMITS, store=store, now=NOW)
    assert (first.status, first.new, first.unchanged) == (PollStatus.FETCHED, 2, 0)
    assert first.source == str(FEEDS / "rss.xml")

    later = NOW + timedelta(hours=3)
    again = import_source(
        str(FEEDS / "rss.xml"), rules=rules, limits=LIMITS, store=store, now=later
    )
    assert (again.new, again.updated, again.unchanged) == (0, 0, 2)
    stored = store.articles_published(after=NOW - timedelta(days=7), until=later)
    assert [a.title for a in stored] == [
        "Metro line 5: the plans go to consultation",
        "Parliament passes the budget & the tax code",
    ]
    # The undated metro item keeps the time it was first seen, not the second import's.
    assert stored[0].published_at == NOW


def test_an_updated_item_updates_its_row_and_keeps_its_publish_time(store: Store) -> None:
    rules = FeedRules(name="bp")
    assert (
        save(store, atom(title="Rate held", updated="2026-11-26T06:00:00Z"), rules=rules, now=NOW)[
            "new"
        ]
        == 1
    )
    later = NOW + timedelta(hours=1)
    counts = save(
        store,
        atom(title="Rate held at 6.5%", updated="2026-11-26T12:30:00Z"),
        rules=rules,
        now=later,
    )
    assert counts["updated"] == 1
    (article,) = store.articles_published(after=NOW - timedelta(days=1), until=later)
    assert article.title == "Rate held at 6.5%"
    assert article.published_at == datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    # Already sent by the list at 07:00: the update is not offered again.
    since_last_edition = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    candidates = store.articles_published(after=since_last_edition, until=later)
    assert not select_articles(candidates, now=later, sections=(), limit=10)


def test_resend_updated_makes_a_modified_item_a_new_article_once(store: Store) -> None:
    rules = FeedRules(name="bp", resend_updated=True)
    save(store, atom(title="Rate held", updated="2026-11-26T06:00:00Z"), rules=rules, now=NOW)
    (sent,) = store.articles_published(after=NOW - timedelta(days=1), until=NOW)

    later = NOW + timedelta(hours=1)
    counts = save(
        store,
        atom(title="Rate held at 6.5%", updated="2026-11-26T12:30:00Z"),
        rules=rules,
        now=later,
    )
    assert counts["revised"] == 1
    (revised,) = store.articles_published(
        after=NOW - timedelta(days=1), until=later
    )  # one row, not two
    assert revised.id == f"{sent.id}~20261126T123000Z"
    assert revised.published_at == datetime(2026, 11, 26, 12, 30, tzinfo=UTC)
    # The selection sees a new article: not among the ids sent.
    selection = select_articles([revised], now=later, sections=(), limit=10, exclude_ids={sent.id})
    assert selection.lead is not None and selection.lead.main == revised
    # The same revision polled again is just unchanged.
    assert (
        save(
            store,
            atom(title="Rate held at 6.5%", updated="2026-11-26T12:30:00Z"),
            rules=rules,
            now=later,
        )["unchanged"]
        == 1
    )


def test_a_file_over_the_size_cap_is_refused(store: Store, tmp_path: Path) -> None:
    huge = tmp_path / "huge.xml"
    with huge.open("wb") as handle:  # 50 MB, made here rather than kept in the repository
        handle.write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>')
        handle.write(b"x" * (50 * 1024 * 1024))
    with pytest.raises(FeedError, match=r"huge\.xml: over the 5000000-byte cap"):
        import_source(str(huge), rules=FeedRules(name="bp"), limits=LIMITS, store=store, now=NOW)


def test_a_missing_file_is_a_feed_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="cannot read"):
        import_source(
            str(tmp_path / "nope.xml"),
            rules=FeedRules(name="bp"),
            limits=LIMITS,
            store=store,
            now=NOW,
        )


def test_a_json_item_dated_in_year_one_is_stored_with_the_feeds_other_items(store: Store) -> None:
    report = import_source(
        str(FEEDS / "wild" / "item-faults.json"),
        rules=FeedRules(name="bp"),
        limits=LIMITS,
        store=store,
        now=NOW,
    )
    assert (report.new, len(report.warnings)) == (2, 1)
    stored = store.articles_published(after=NOW - timedelta(days=1), until=NOW)
    assert sorted(a.title for a in stored) == ["Good JSON item", "Year one"]


@pytest.fixture
def feeds_url() -> Iterator[str]:
    """tests/fixtures/feeds over real HTTP."""
    serve = partial(SimpleHTTPRequestHandler, directory=str(FEEDS))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), serve)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_a_feed_the_store_refuses_between_two_good_ones_leaves_both_polled(
    tmp_path: Path, feeds_url: str
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/d.sqlite3")
    upgrade(engine, now=NOW)
    with engine.begin() as tx:  # the database itself refuses the middle feed's rows
        tx.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON articles WHEN NEW.id LIKE 'hostile:%' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    store = Store(engine)
    sources = (
        FeedSettings(name="first", url=f"{feeds_url}/rss.xml"),
        FeedSettings(name="hostile", url=f"{feeds_url}/wild/item-faults.xml"),
        FeedSettings(name="third", url=f"{feeds_url}/atom.xml"),
    )
    reports = poll_feeds(FeedsSettings(sources=sources, allow_private=True), store, now=NOW)
    assert [r.status for r in reports] == [
        PollStatus.FETCHED,
        PollStatus.FAILED,
        PollStatus.FETCHED,
    ]
    assert reports[2].new == 2
    assert "refused" in (reports[1].error or "")
    with engine.begin() as tx:
        errors = dict(tx.execute(select(feed_state.c.url, feed_state.c.last_error)).all())
    assert errors[sources[0].url] is None and errors[sources[2].url] is None
    assert "refused" in errors[sources[1].url]
