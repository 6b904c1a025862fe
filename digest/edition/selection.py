"""Which articles go into an edition: pure, given the candidates, the moment and the rules."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.edition.stories import Story, group_stories
from digest.models import Article, EditionShape


@dataclass(frozen=True, slots=True)
class SectionGroup:
    """The stories of one section, newest first."""

    name: str
    stories: tuple[Story, ...]


@dataclass(frozen=True, slots=True)
class Selection:
    """An edition's content: the lead story, then the rest grouped by section."""

    lead: Story | None
    sections: tuple[SectionGroup, ...]

    @property
    def stories(self) -> list[Story]:
        """Every story in reading order."""
        rest = [story for group in self.sections for story in group.stories]
        return ([self.lead] if self.lead else []) + rest

    @property
    def articles(self) -> list[Article]:
        """Every selected article in reading order, each story's representative first."""
        return [article for story in self.stories for article in story.articles]

    def __bool__(self) -> bool:
        return self.lead is not None or bool(self.sections)


def select_articles(
    candidates: Sequence[Article],
    *,
    now: datetime,
    sections: Sequence[str],
    limit: int,
    exclude_ids: Collection[str] = frozenset(),
    story_threshold: float | None = None,
    shape: EditionShape | None = None,
) -> Selection:
    """Pick the candidates published by `now`, not yet sent, in the list's sections, as at most
    `limit` stories.

    The candidates are what the store found new for the list (published or first stored since
    its last edition). With a `story_threshold`, articles about the same news share one story
    (digest.edition.stories); without, every article is a story of its own. The lead story is
    the newest one the site marked as lead, else the newest. The others follow grouped by
    section: in the list's section order when it names sections, otherwise the section with
    the freshest news first; newest first within a section.
    """
    shape = shape or EditionShape()
    wanted = {name.casefold() for name in sections}
    fresh = sorted(
        (
            article
            for article in candidates
            if article.published_at <= now
            and article.id not in exclude_ids
            and article.id not in shape.excluded
            and (not wanted or article.section.casefold() in wanted)
        ),
        key=lambda article: (article.published_at, article.id),
        reverse=True,
    )
    if story_threshold is None:
        stories = [Story(main=article) for article in fresh]
    else:
        stories = group_stories(fresh, threshold=story_threshold)  # newest first, as given
    if not stories:
        return Selection(lead=None, sections=())
    pinned = [story for story in stories if shape.lead in {a.id for a in story.articles}]
    lead = next(iter(pinned), next((story for story in stories if story.main.lead), stories[0]))
    rest = [s for s in stories if s is not lead][: limit - 1]
    return _arranged(lead, rest, (*shape.section_order, *sections))


def _arranged(lead: Story, rest: list[Story], sections: Sequence[str]) -> Selection:
    groups: dict[str, list[Story]] = {}
    for story in rest:  # in reading order, so dict order is "freshest section first"
        groups.setdefault(story.main.section, []).append(story)
    if sections:
        rank: dict[str, int] = {}
        for name in sections:  # the first mention counts: an editor's order before the list's
            rank.setdefault(name.casefold(), len(rank))
        order = sorted(groups, key=lambda name: rank.get(name.casefold(), len(rank)))
    else:
        order = list(groups)
    return Selection(
        lead=lead, sections=tuple(SectionGroup(name, tuple(groups[name])) for name in order)
    )


def restrict(stories: Sequence[Story], sections: Collection[str] | None) -> Selection:
    """An edition's stories (in reading order) cut down to the chosen sections (None: all).

    A story stays when its representative's section is chosen. The first story kept leads;
    the rest keep their order and grouping. Used for a subscriber who picked sections, so their
    copy is the edition minus what they left out, and to rebuild a stored edition.
    """
    wanted = None if sections is None else {name.casefold() for name in sections}
    kept = [s for s in stories if wanted is None or s.main.section.casefold() in wanted]
    if not kept:
        return Selection(lead=None, sections=())
    return _arranged(kept[0], kept[1:], sections=())
