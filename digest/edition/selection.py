"""Which articles go into an edition: pure, given the candidates, the window and the rules."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.models import Article


@dataclass(frozen=True, slots=True)
class SectionGroup:
    """The articles of one section, newest first."""

    name: str
    articles: tuple[Article, ...]


@dataclass(frozen=True, slots=True)
class Selection:
    """An edition's content: the lead story, then the rest grouped by section."""

    lead: Article | None
    sections: tuple[SectionGroup, ...]

    @property
    def articles(self) -> list[Article]:
        """Every selected article in reading order."""
        rest = [article for group in self.sections for article in group.articles]
        return ([self.lead] if self.lead else []) + rest

    def __bool__(self) -> bool:
        return self.lead is not None or bool(self.sections)


def select_articles(
    candidates: Sequence[Article],
    *,
    since: datetime,
    now: datetime,
    sections: Sequence[str],
    limit: int,
    exclude_ids: Collection[str] = frozenset(),
) -> Selection:
    """Pick what is new since `since` (and not yet sent) in the list's sections, capped at `limit`.

    The lead story is the newest article the site marked as lead, else the newest article.
    The others follow grouped by section: in the list's section order when it names sections,
    otherwise the section with the freshest news first; newest first within a section.
    """
    wanted = {name.casefold() for name in sections}
    fresh = sorted(
        (
            article
            for article in candidates
            if since < article.published_at <= now
            and article.id not in exclude_ids
            and (not wanted or article.section.casefold() in wanted)
        ),
        key=lambda article: (article.published_at, article.id),
        reverse=True,
    )
    if not fresh:
        return Selection(lead=None, sections=())
    lead = next((article for article in fresh if article.lead), fresh[0])
    rest = [article for article in fresh if article is not lead][: limit - 1]

    groups: dict[str, list[Article]] = {}
    for article in rest:  # newest first, so dict order is "freshest section first"
        groups.setdefault(article.section, []).append(article)
    if sections:
        rank = {name.casefold(): index for index, name in enumerate(sections)}
        order = sorted(groups, key=lambda name: rank.get(name.casefold(), len(rank)))
    else:
        order = list(groups)
    return Selection(
        lead=lead, sections=tuple(SectionGroup(name, tuple(groups[name])) for name in order)
    )


def restrict(articles: Sequence[Article], sections: Collection[str]) -> Selection:
    """An edition's articles (in reading order) cut down to the chosen sections.

    The first article kept leads; the rest keep their order and grouping. Used for a
    subscriber who picked sections, so their copy is the edition minus what they left out.
    """
    wanted = {name.casefold() for name in sections}
    kept = [article for article in articles if article.section.casefold() in wanted]
    if not kept:
        return Selection(lead=None, sections=())
    groups: dict[str, list[Article]] = {}
    for article in kept[1:]:
        groups.setdefault(article.section, []).append(article)
    return Selection(
        lead=kept[0], sections=tuple(SectionGroup(n, tuple(a)) for n, a in groups.items())
    )
