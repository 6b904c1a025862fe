"""Feed parsing: RSS, Atom and JSON Feed files into clean articles, and hostile feeds refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.config import FeedRules
from digest.errors import FeedError
from digest.intake.articles import SUMMARY_LIMIT, TITLE_LIMIT
from digest.intake.feeds import ParsedFeed, canonical_link, parse_feed

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RULES = FeedRules(
    name="bp",
    sections={"Politik": "Europe", "markets": "Business", "Kultúra": "Culture"},
    default_section="Budapest",
)


def parse(
    name: str, *, rules: FeedRules = RULES, now: datetime = NOW, location: str = ""
) -> ParsedFeed:
    return parse_feed((FEEDS / name).read_bytes(), rules=rules, now=now, location=location)


def rss_item(
    inner: str, *, namespaces: str = 'xmlns:media="http://search.yahoo.com/mrss/"'
) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" {namespaces}>'
        "<channel><title>T</title>"
        f"<item><guid>g-1</guid><title>A story</title>"
        f"<link>https://budapestpost.example/a/1</link>{inner}</item></channel></rss>"
    ).encode()


def test_rss_items_become_clean_articles() -> None:
    parsed = parse("rss.xml")
    assert parsed.warnings == ()
    budget, metro = (item.article for item in parsed.items)

    assert budget.title == "Parliament passes the budget & the tax code"
    assert budget.summary == "The vote was close. Read more & here."
    assert budget.url == "https://budapestpost.example/politics/budget-passed"
    assert budget.section == "Europe"  # "Politik" through the feed's mapping
    assert budget.published_at == datetime(2026, 11, 25, 17, 30, tzinfo=UTC)
    assert budget.image_url == "https://budapestpost.example/img/budget.jpg"
    assert budget.author == "Anna Kovács"

    assert metro.section == "Városháza"  # an unmapped category is the section itself
    assert metro.published_at == NOW  # undated: the time it was first seen
    assert metro.image_url == "https://budapestpost.example/img/metro.jpg"  # an image enclosure
    assert metro.author is None


def test_atom_entries_become_clean_articles() -> None:
    forint, otp = (
        item.article
        for item in parse("atom.xml", location="https://budapestpost.example/feeds/b.xml").items
    )
    assert forint.title == "Forint steadies after the rate decision"
    assert forint.summary == "The central bank held its rate."
    assert forint.section == "Business"  # "MARKETS" matches "markets": categories ignore case
    assert (
        forint.image_url == "https://budapestpost.example/img/forint.png"
    )  # first <img>, made absolute
    assert forint.image_alt == "A forint coin"
    assert forint.author == "Béla Tóth"
    assert otp.published_at == datetime(
        2026, 11, 26, 7, 15, tzinfo=UTC
    )  # only <updated>: taken as published
    assert otp.image_url == "https://budapestpost.example/img/otp-thumb.jpg"


def test_json_feed_items_become_clean_articles() -> None:
    parsed = parse("feed.json")
    opera, fair = (item.article for item in parsed.items)
    assert opera.title == "The Opera House reopens & sells out"
    assert opera.summary == "After two years, the curtain rises."
    assert opera.section == "Culture"
    assert opera.published_at == datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    assert (opera.image_url, opera.image_alt) == (
        "https://budapestpost.example/img/opera.jpg",
        "The auditorium",
    )
    assert opera.author == "Dóra Szabó"
    assert fair.summary == "The winter book fair has a new home."
    assert (
        fair.image_url == "https://budapestpost.example/img/fair.jpg"
    )  # the image attachment, not the audio
    assert fair.published_at == NOW
    # The string in "items" and the javascript: item are skipped, each with a line naming the feed.
    assert [w.split(": ", 2)[1] for w in parsed.warnings] == ["item 3", "item 4"]
    assert all(w.startswith("feed 'bp'") for w in parsed.warnings)


def test_ids_are_stable_prefixed_and_follow_the_guid_else_the_canonical_link() -> None:
    first = parse("rss.xml").items
    again = parse("rss.xml", now=datetime(2026, 12, 1, tzinfo=UTC)).items
    assert [i.article.id for i in first] == [i.article.id for i in again]
    assert all(
        i.article.id == i.key and i.key.startswith("bp:") and len(i.key) == 3 + 16 for i in first
    )

    moved = rss_item("").replace(b"/a/1", b"/a/1-renamed")
    assert (
        parse_feed(moved, rules=RULES, now=NOW).items[0].key
        == parse_feed(rss_item(""), rules=RULES, now=NOW).items[0].key
    )

    other_feed = FeedRules(name="bp-culture")
    assert parse("rss.xml", rules=other_feed).items[0].key.startswith("bp-culture:")
    assert canonical_link("HTTPS://BudapestPost.example/politics/metro-5#comments") == (
        "https://budapestpost.example/politics/metro-5"
    )


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        (
            '<media:content url="https://i.example/c.jpg" medium="image"/><media:thumbnail url="https://i.example/t.jpg"/>',
            "https://i.example/c.jpg",
        ),
        (
            '<media:content url="https://i.example/v.mp4" type="video/mp4"/><media:thumbnail url="https://i.example/t.jpg"/>',
            "https://i.example/t.jpg",
        ),
        (
            '<enclosure url="https://i.example/e.png" type="image/png" length="1"/>',
            "https://i.example/e.png",
        ),
        ('<enclosure url="https://i.example/e.mp3" type="audio/mpeg" length="1"/>', None),
        (
            "<description><![CDATA[<p>x"
            '<img src="https://i.example/i.gif" alt="Alt &amp; text"></p>]]></description>',
            "https://i.example/i.gif",
        ),
        (
            '<media:content url="javascript:alert(1)" medium="image"/>'
            '<description>&lt;img src="data:image/png;base64,AA"&gt;</description>',
            None,
        ),
        (
            '<media:content url="https://i.example/p.gif" medium="image" width="1" height="1"/>'
            '<media:thumbnail url="https://i.example/og.jpg"/>'
            '<description>&lt;img src="https://i.example/i.gif"&gt;</description>',
            "https://i.example/og.jpg",
        ),
        (
            '<enclosure url="https://feeds.feedburner.com/~r/bp/~4/x.gif" type="image/gif"'
            ' length="1"/>'
            '<media:thumbnail url="https://s.w.org/images/core/emoji/72x72/1f600.png"/>'
            '<description>&lt;img src="https://i.example/i.gif" width="1px"&gt;'
            '&lt;img src="https://i.example/real.jpg"&gt;</description>',
            "https://i.example/real.jpg",
        ),
    ],
    ids=[
        "media-content-first",
        "thumbnail-when-content-is-video",
        "image-enclosure",
        "audio-enclosure-ignored",
        "first-img",
        "javascript-and-data-refused",
        "pixel-media-skipped-for-the-og-thumbnail",
        "pixel-enclosure-and-emoji-skipped-for-the-first-real-img",
    ],
)
def test_image_comes_from_media_enclosures_or_the_first_img(
    inner: str, expected: str | None
) -> None:
    assert parse_feed(rss_item(inner), rules=RULES, now=NOW).items[0].article.image_url == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"image": "https://i.example/og.jpg"}, "https://i.example/og.jpg"),
        ({"banner_image": "https://i.example/banner.jpg"}, "https://i.example/banner.jpg"),
        ({"image": "https://pixel.wp.com/g.gif", "banner_image": ""}, "https://i.example/i.jpg"),
        ({}, "https://i.example/i.jpg"),
    ],
    ids=["image-before-content", "banner-image", "pixel-image-skipped", "first-img"],
)
def test_a_json_items_named_image_comes_before_its_contents_img(
    fields: dict[str, str], expected: str
) -> None:
    item = {
        "id": "1",
        "url": "https://budapestpost.example/a",
        "title": "A",
        "content_html": '<p>x<img src="https://i.example/i.jpg"></p>',
        **fields,
    }
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [item]})
    parsed = parse_feed(body.encode(), rules=RULES, now=NOW)
    assert parsed.items[0].article.image_url == expected


def test_overlong_fields_are_cut_at_a_word_boundary_with_an_ellipsis() -> None:
    words = " ".join(["Budapest"] * 200)
    body = rss_item(f"<description>{words}</description>").replace(
        b"<title>A story</title>", f"<title>{words}</title>".encode()
    )
    article = parse_feed(body, rules=RULES, now=NOW).items[0].article
    assert len(article.title) <= TITLE_LIMIT and article.title.endswith("Budapest…")
    assert len(article.summary) <= SUMMARY_LIMIT and article.summary.endswith("Budapest…")


def test_summary_markup_is_reduced_to_text_without_scripts_styles_or_comments() -> None:
    markup = (
        "<style>p{}</style><p>One<!-- secret --></p><ul><li>Two</li>"
        "<li>Three&nbsp;&amp;&#x20AC;</li></ul><iframe src=x>Four</iframe>"
    )
    article = (
        parse_feed(
            rss_item(f"<description><![CDATA[{markup}]]></description>"), rules=RULES, now=NOW
        )
        .items[0]
        .article
    )
    assert article.summary == "One Two Three &€"


def test_future_dates_are_taken_as_now() -> None:
    body = rss_item("<pubDate>Fri, 01 Jan 2100 00:00:00 +0000</pubDate>")
    assert parse_feed(body, rules=RULES, now=NOW).items[0].article.published_at == NOW


@pytest.mark.parametrize(
    "resend_updated",
    [False, True],
    ids=["updates-keep-the-id", "updates-are-new-revisions"],
)
def test_a_modified_entry_becomes_a_revision_only_when_resend_updated(resend_updated: bool) -> None:
    entry = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>B</title><id>f</id>'
        b"<updated>2026-11-26T10:00:00Z</updated><entry><id>e-1</id><title>Rate held</title>"
        b'<link href="https://budapestpost.example/b/1"/><published>2026-11-26T06:00:00Z</published>'
        b"<updated>2026-11-26T10:00:00Z</updated></entry></feed>"
    )
    item = parse_feed(
        entry, rules=FeedRules(name="bp", resend_updated=resend_updated), now=NOW
    ).items[0]
    if resend_updated:
        assert item.article.id == f"{item.key}~20261126T100000Z"
        assert item.article.published_at == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    else:
        assert item.article.id == item.key
        assert item.article.published_at == datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("broken/invalid.xml", "not well-formed XML: line 6: mismatched tag"),
        ("broken/not-a-feed.html", "not an RSS, Atom or JSON feed"),
        ("broken/json-not-utf8.json", "JSON Feed is not UTF-8"),
    ],
    ids=["invalid-xml", "html-page", "json-not-utf8"],
)
def test_a_broken_feed_is_refused_with_a_message_naming_it(name: str, message: str) -> None:
    with pytest.raises(FeedError) as caught:
        parse(name, location=f"https://budapestpost.example/{name}")
    assert str(caught.value).startswith(f"feed 'bp' (https://budapestpost.example/{name}): ")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not an RSS, Atom or JSON feed"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "not valid JSON"),
        (b'{"title": "no version", "items": []}', "no JSON Feed version"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', "without an items list"),
        (b'{"items": ' + b"[" * 100_000, "nested too deeply"),
    ],
    ids=[
        "empty",
        "truncated-json",
        "json-without-version",
        "json-items-not-a-list",
        "json-too-deep",
    ],
)
def test_bodies_that_are_no_feed_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(FeedError, match=message):
        parse_feed(body, rules=RULES, now=NOW)


def test_a_body_declared_utf8_but_in_latin1_is_read_with_a_warning() -> None:
    parsed = parse("broken/latin1-declared-utf8.xml")
    assert parsed.items[0].article.title == "Café Gerbeaud reopens on Vörösmarty tér"
    assert parsed.items[0].article.summary == "Crème and cake."
    assert parsed.warnings and "declared as utf-8" in parsed.warnings[0]


def test_undefined_html_entities_are_tolerated_with_a_warning() -> None:
    parsed = parse_feed(rss_item("<description>a&nbsp;b</description>"), rules=RULES, now=NOW)
    assert parsed.items[0].article.summary == "a b"  # one_line folds the no-break space
    assert "undefined entity" in parsed.warnings[0]


def test_repeated_ids_keep_the_first_item_and_say_so() -> None:
    parsed = parse("broken/duplicate-ids.xml")
    assert [item.article.title for item in parsed.items] == ["First copy", "Another story"]
    assert parsed.warnings == ("feed 'bp': item 2: repeats the id 'dup-1'; skipped",)


def test_javascript_links_and_images_are_dropped() -> None:
    parsed = parse("broken/javascript-links.xml")
    (story,) = (item.article for item in parsed.items)
    assert story.url == "https://budapestpost.example/hostile/2"
    assert story.image_url is None
    assert story.summary == "Text link"
    assert parsed.warnings == (
        "feed 'bp': item 1: link 'javascript:alert(document.cookie)' is not an http(s) URL;"
        " skipped",
    )


def test_categories_give_sections_unless_the_rules_say_otherwise() -> None:
    banks = [i.article for i in parse("atom.xml").items if i.article.section != "Business"]
    assert [a.section for a in banks] == ["Banks"]  # the entry's Atom category term
    plain = RULES.model_copy(update={"sections_from_categories": False})
    metro = parse_feed((FEEDS / "rss.xml").read_bytes(), rules=plain, now=NOW).items[1]
    assert metro.article.section == "Budapest"  # unmapped: the default section


def test_an_items_fault_stays_with_the_item() -> None:
    parsed = parse("wild/item-faults.xml")
    assert [item.article.title for item in parsed.items] == ["The good one"]
    assert parsed.warnings == (
        "feed 'bp': item 1: Invalid IPv6 URL; skipped",
        "feed 'bp': item 2: Invalid IPv6 URL; skipped",
        "feed 'bp': item 3: no link; skipped",  # an isPermaLink="false" guid is no URL
    )


def test_json_feed_faults_stay_with_their_items_and_http_version_urls_are_accepted() -> None:
    parsed = parse("wild/item-faults.json")
    assert parsed.warnings == ("feed 'bp': item 1: 'id' is a number of over 4000 digits; skipped",)
    year_one, good = (item.article for item in parsed.items)
    assert year_one.published_at == NOW  # a date the store cannot hold counts as undated
    assert good.title == "Good JSON item"


def test_atom_text_titles_stay_literal_and_a_pdf_alternate_is_the_link() -> None:
    parsed = parse("wild/atom-links-and-titles.xml")
    pdf, html = (item.article for item in parsed.items)
    assert (pdf.title, pdf.url) == (
        "Why <b> is not bold",
        "https://budapestpost.example/reports/1.pdf",
    )
    assert html.title == "Markup here goes"


def test_tracking_pixels_and_emoji_are_never_the_image() -> None:
    real, pixel_only = (item.article for item in parse("wild/pixels.xml").items)
    assert (real.image_url, real.image_alt) == (
        "https://budapestpost.example/img/real.jpg",
        "The real picture",
    )
    assert pixel_only.image_url is None


def test_relative_links_in_a_file_resolve_against_the_feeds_own_address() -> None:
    (item,) = parse("wild/relative-links.xml", location="/tmp/relative-links.xml").items
    assert item.article.url == "https://budapestpost.example/a/1"
    assert item.article.image_url == "https://budapestpost.example/img/r1.jpg"


def test_an_undeclared_itunes_prefix_is_declared_not_a_refusal() -> None:
    parsed = parse("wild/podcast-undeclared-itunes.xml")
    assert [item.article.title for item in parsed.items] == ["Episode one"]
    assert parsed.warnings == ("feed 'bp': a namespace prefix is not declared; declared for it",)
