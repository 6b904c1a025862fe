"""Selection rules: nothing from the future, sections, no repeats, the cap (in stories) and the
reading order. Which articles are candidates at all is the store's query (test_story_editions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.edition.selection import select_articles
from digest.models import Article

NOW = datetime(2026, 3, 2, 6, tzinfo=UTC)


def article(id: str, hours_ago: float, section: str = "Europe", lead: bool = False) -> Article:
    return Article(
        id=id,
        title=id,
        summary="",
        section=section,
        url=f"https://x.example/{id}",
        published_at=NOW - timedelta(hours=hours_ago),
        lead=lead,
    )


CANDIDATES = [
    article("eu1", 1),
    article("eu2", 5),
    article("biz1", 2, "Business"),
    article("tech1", 3, "Technology"),
    article("lead", 10, "World", lead=True),
    article("future", -1),
]


def test_lead_and_grouping() -> None:
    chosen = select_articles(CANDIDATES, now=NOW, sections=(), limit=12)
    assert chosen.lead is not None and chosen.lead.main.id == "lead"
    assert [g.name for g in chosen.sections] == ["Europe", "Business", "Technology"]
    assert [a.id for a in chosen.articles] == ["lead", "eu1", "eu2", "biz1", "tech1"]


@pytest.mark.parametrize(
    ("sections", "limit", "exclude", "expected"),
    [
        (("Technology", "Business"), 12, (), ["biz1", "tech1"]),
        (("business",), 12, (), ["biz1"]),
        ((), 3, (), ["lead", "eu1", "biz1"]),
        ((), 12, ("lead", "eu1"), ["biz1", "tech1", "eu2"]),
        (("Culture",), 12, (), []),
    ],
    ids=["list-section-order", "case-insensitive", "cap-keeps-newest", "no-repeats", "nothing-new"],
)
def test_rules(
    sections: tuple[str, ...], limit: int, exclude: tuple[str, ...], expected: list[str]
) -> None:
    chosen = select_articles(
        CANDIDATES,
        now=NOW,
        sections=sections,
        limit=limit,
        exclude_ids=exclude,
    )
    assert [a.id for a in chosen.articles] == expected
    assert bool(chosen) == bool(expected)


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        (("Business", "Technology"), ["biz1", "tech1"]),
        (("europe",), ["eu1", "eu2"]),
        (("Culture",), []),
    ],
    ids=["two-sections", "case-insensitive", "nothing-left"],
)
def test_restrict_to_a_subscribers_sections(sections: tuple[str, ...], expected: list[str]) -> None:
    from digest.edition.selection import restrict

    edition = select_articles(CANDIDATES, now=NOW, sections=(), limit=12)
    chosen = restrict(edition.stories, sections)
    assert [a.id for a in chosen.articles] == expected
