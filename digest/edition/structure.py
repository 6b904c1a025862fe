"""An edition's structure as data: the tree its HTML and text are rendered from, as JSON.

`digest preview` writes it beside the bodies, and the desk can show it: the subject, then the
sections in reading order (the lead story first, under "Top story"), and for each story its
articles, representative first.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date

from digest.edition.selection import Selection
from digest.edition.stories import Story

LEAD_SECTION = "Top story"


@dataclass(frozen=True, slots=True)
class ArticleRef:
    id: str
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class StoryData:
    """One card: `articles[0]` is shown in full, the others are its "Also:" links."""

    articles: tuple[ArticleRef, ...]


@dataclass(frozen=True, slots=True)
class SectionData:
    name: str
    stories: tuple[StoryData, ...]


@dataclass(frozen=True, slots=True)
class EditionData:
    list_slug: str
    edition_date: str
    subject: str
    sections: tuple[SectionData, ...]


def _story(story: Story) -> StoryData:
    return StoryData(tuple(ArticleRef(a.id, a.title, a.url) for a in story.articles))


def edition_data(
    selection: Selection, *, list_slug: str, edition_date: date, subject: str
) -> EditionData:
    """The selection as the plain tree the templates walk, lead story first."""
    lead = (SectionData(LEAD_SECTION, (_story(selection.lead),)),) if selection.lead else ()
    rest = tuple(
        SectionData(group.name, tuple(_story(story) for story in group.stories))
        for group in selection.sections
    )
    return EditionData(
        list_slug=list_slug,
        edition_date=edition_date.isoformat(),
        subject=subject,
        sections=lead + rest,
    )


def to_json(data: EditionData) -> str:
    """The tree as indented JSON with the text as written (no \\u escapes for ő or é)."""
    return json.dumps(asdict(data), ensure_ascii=False, indent=2) + "\n"
