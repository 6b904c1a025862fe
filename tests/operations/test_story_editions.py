"""Editions made of stories, through the real store and a real SMTP server: the preview's JSON
structure, "Also:" links in both parts, late and backdated articles reaching the next edition,
and one article per canonical URL across sources."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from lxml import html as lxml_html

from digest.config import FeedRules, Settings
from digest.intake.articles import article_from_record
from digest.intake.feeds import parse_feed
from digest.operations.editions import Draft, draft_edition
from digest.operations.publisher import Publisher
from tests.conftest import NOW, ROOT, RecordingHandler, SeededTemplates
from tests.support.clicks import counted

LABELS = json.loads(
    (ROOT / "tests" / "fixtures" / "stories" / "seed_labels.json").read_text(encoding="utf-8")
)
NATO, SHEIN = LABELS["same"][0]["ids"], LABELS["same"][1]["ids"]
SEED_COUNT = len(json.loads((ROOT / "seeds" / "articles.json").read_text(encoding="utf-8")))


@pytest.fixture
def weekly_takes_all(settings: Settings, seeded_templates: SeededTemplates) -> Publisher:
    """The seeded application with a weekly list that takes every seed article."""
    lists = tuple(
        item.model_copy(update={"max_articles": 100}) if item.slug == "weekly" else item
        for item in settings.lists
    )
    changed = settings.model_copy(update={"lists": lists})
    seeded_templates.copy_into(changed)
    return Publisher(changed)


def draft(publisher: Publisher, list_slug: str, *, now: datetime) -> Draft:
    settings = publisher.settings
    return draft_edition(
        settings.site, publisher.store, publisher.renderer, settings.list(list_slug), now=now
    )


def story_ids(structure: dict[str, object]) -> list[list[str]]:
    sections = structure["sections"]
    assert isinstance(sections, list)
    return [[a["id"] for a in story["articles"]] for s in sections for story in s["stories"]]


def test_the_preview_json_holds_the_nato_and_shein_stories(
    weekly_takes_all: Publisher, tmp_path: Path
) -> None:
    files = weekly_takes_all.preview("weekly", now=NOW, out_dir=tmp_path / "out")
    structure = json.loads(files.json.read_text(encoding="utf-8"))
    stories = story_ids(structure)
    assert sorted(i for story in stories for i in story) == sorted(
        {i for story in stories for i in story}
    )  # each article once
    assert len({i for story in stories for i in story}) == SEED_COUNT
    assert any(set(story) == set(NATO) for story in stories)
    assert any(set(story) == set(SHEIN) for story in stories)
    assert structure["subject"] and structure["sections"][0]["name"] == "Top story"
    # Every story's representative is a card in the HTML, every other article an "Also:" link.
    document = lxml_html.fromstring(files.html.read_text(encoding="utf-8"))
    also = {a.get("href") for p in document.find_class("also") for a in p.iter("a")}
    day = datetime.fromisoformat(structure["edition_date"]).date()

    def link(article: dict[str, str]) -> str:
        return counted(weekly_takes_all.settings, "weekly", day, article["id"], article["url"])

    for section in structure["sections"]:
        for story in section["stories"]:
            main, *rest = story["articles"]
            assert link(main) not in also
            assert {link(a) for a in rest} <= also


def test_also_links_reach_the_reader_in_both_parts(
    weekly_takes_all: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    weekly_takes_all.send("weekly", now=NOW)
    edition = weekly_takes_all.store.latest_edition("weekly")
    assert edition is not None
    (nato,) = [ids for ids in edition.stories if set(ids) == set(NATO)]
    main, *others = weekly_takes_all.store.articles_by_id(list(nato))
    message = smtp_server[0].messages[0].message
    text = " ".join(message.get_body(("plain",)).get_content().split())
    document = lxml_html.fromstring(message.get_body(("html",)).get_content())
    links = {a.get("href"): " ".join(a.text_content().split()) for a in document.iter("a")}
    also = weekly_takes_all.renderer.catalogue[document.get("lang")].also  # the reader's language
    settings, day = weekly_takes_all.settings, edition.edition_date
    for other in others:
        link = counted(settings, "weekly", day, other.id, other.url)
        assert f"{also} {other.title} <{link}>" in text
        assert links[link] == other.title
    assert text.count(f"<{counted(settings, 'weekly', day, main.id, main.url)}>") == 1
    # The introduction counts the stories (cards), not the articles: "Also:" links are extra.
    catalogue = weekly_takes_all.renderer.catalogue[document.get("lang")]
    intro = catalogue.intro(count=len(edition.stories), list_name=settings.list("weekly").name)
    assert len(edition.stories) < len(edition.article_ids)
    assert " ".join(intro.split()) in text


def test_an_article_backdated_before_the_cutoff_goes_in_the_next_edition(
    publisher: Publisher,
) -> None:
    publisher.send("daily", now=NOW)
    first = publisher.store.latest_edition("daily")
    assert first is not None
    # Imported an hour after the edition, dated two hours before its cutoff.
    late = article_from_record(
        {
            "id": "bp-late-lead",
            "title": "Parliament passes the budget after an all-night sitting",
            "url": "https://budapestpost.example/hungary/budget-passed",
            "section": "Hungary",
            "published_at": (first.cutoff - timedelta(hours=2)).isoformat(),
        },
        now=NOW + timedelta(hours=1),
    )
    publisher.store.save_articles([late], now=NOW + timedelta(hours=1), update_existing=False)
    publisher.send("daily", now=NOW + timedelta(days=1))
    second = publisher.store.latest_edition("daily")
    assert second is not None and second.id != first.id
    assert "bp-late-lead" in second.article_ids
    assert not set(second.article_ids) & set(first.article_ids)  # nothing sent twice
    # And only once: the edition after that does not carry it again.
    publisher.store.save_articles(
        [late], now=NOW + timedelta(days=1, hours=1), update_existing=True
    )
    third = draft(publisher, "daily", now=NOW + timedelta(days=2))
    assert "bp-late-lead" not in [a.id for a in third.selection.articles]


SITE_URL = "https://budapestpost.example/hungary/budget-passed"


@pytest.mark.parametrize(
    "feed_url",
    [
        "https://budapestpost.example/hungary/budget-passed?utm_source=rss&amp;utm_medium=feed",
        "HTTPS://BudapestPost.example:443/hungary/budget-passed/",
        "https://budapestpost.example/hungary/budget-passed?fbclid=abc#comments",
    ],
    ids=["utm", "case-port-slash", "click-id-fragment"],
)
def test_one_url_one_article_across_sources(publisher: Publisher, feed_url: str) -> None:
    store = publisher.store
    site = article_from_record(
        {"id": "bp-budget", "title": "Budget passed", "url": SITE_URL, "section": "Hungary"},
        now=NOW,
    )
    assert store.save_articles([site], now=NOW, update_existing=False) == (1, 0)
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
        f"<item><guid>wire-77</guid><title>Budget passed at dawn</title><link>{feed_url}</link>"
        "<pubDate>Mon, 02 Mar 2026 05:00:00 GMT</pubDate></item></channel></rss>"
    ).encode()
    parsed = parse_feed(feed, rules=FeedRules(name="wire"), now=NOW)
    counts = store.save_feed_articles([(i.key, i.article) for i in parsed.items], now=NOW)
    assert counts["new"] == 0
    # The same page through the site import under another id is the stored article too.
    again = article_from_record(
        {"id": "bp-budget-copy", "title": "Budget passed", "url": feed_url.replace("&amp;", "&")},
        now=NOW,
    )
    assert store.save_articles([again], now=NOW, update_existing=False) == (0, 0)
    found = [a for a in store.articles_published(after=NOW - timedelta(days=1), until=NOW)]
    assert [a.id for a in found if "budget" in a.url.lower()] == ["bp-budget"]


def test_a_list_can_keep_stories_apart(
    settings: Settings, seeded_templates: SeededTemplates
) -> None:
    lists = tuple(
        item.model_copy(update={"max_articles": 100, "stories": False})
        if item.slug == "weekly"
        else item
        for item in settings.lists
    )
    changed = settings.model_copy(update={"lists": lists})
    seeded_templates.copy_into(changed)
    apart = draft(Publisher(changed), "weekly", now=NOW)
    assert len(apart.selection.stories) == SEED_COUNT
    assert all(not story.also for story in apart.selection.stories)
