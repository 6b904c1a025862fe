"""Edition rendering: Jinja2 templates to an inlined HTML and a plain-text digest, once per edition.

Per-subscriber parts are left as slot markers (`slot_marker`) that the message builder fills in
afterwards, so neither Jinja2 nor premailer ever runs per subscriber.
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, TemplateError
from markupsafe import Markup

from digest.config import subject_environment
from digest.edition.clicks import ClickLinks
from digest.edition.locale import Catalogue, Words
from digest.edition.pieces import (
    InlinedLibrary,
    Kind,
    Piece,
    layout,
    library,
    serialised,
    strip_markers,
    text_marker,
)
from digest.edition.selection import Selection
from digest.edition.stories import Story
from digest.edition.views import (
    AlsoView,
    ArticleView,
    EditionFacts,
    EditionView,
    RenderedEdition,
    SectionView,
    SiteView,
    SlotsView,
)
from digest.errors import RenderError
from digest.models import Article

HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"
SLOT_NAMES = ("greeting", "unsubscribe", "preferences", "reader")
PREHEADER_LIMIT = 150


def slot_marker(nonce: str, name: str) -> str:
    """The marker standing for a per-subscriber value; ASCII letters and digits only, so it
    survives HTML serialisation, URL escaping and CSS inlining unchanged."""
    return f"xdigestslot{nonce}{name}"


def slot_pattern(nonce: str) -> re.Pattern[str]:
    """Matches every slot marker of one edition and captures the slot's name."""
    return re.compile(f"xdigestslot{re.escape(nonce)}({'|'.join(SLOT_NAMES)})")


def fill_slots(document: str, nonce: str, values: dict[str, str]) -> str:
    """Replace an edition's slot markers with already-escaped values (preview, archive)."""
    return slot_pattern(nonce).sub(lambda match: values[match.group(1)], document)


def _autoescape(name: str | None) -> bool:
    # select_autoescape() keys on the last extension, so "digest.html.j2" would not be escaped.
    return name is None or name.endswith((".html.j2", ".html"))


def _wrap(value: str, width: int = 72, indent: str = "") -> str:
    return "\n".join(
        textwrap.wrap(
            value,
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
    )


def _view(story: Story, zone: ZoneInfo, words: Words, links: ClickLinks | None) -> ArticleView:
    article = story.main

    def url(item: Article) -> str:
        return links.url(item.id) if links else item.url

    return ArticleView(
        title=article.title,
        summary=article.summary,
        section=article.section,
        url=url(article),
        image_url=article.image_url,
        image_alt=article.image_alt,
        author=article.author,
        published_label=words.moment(article.published_at.astimezone(zone)),
        also=tuple(AlsoView(title=other.title, url=url(other)) for other in story.also),
    )


def _preheader(selection: Selection) -> str:
    cards = [story.main for story in selection.stories]
    first = cards[0].title if cards else ""
    sections = ", ".join(dict.fromkeys(a.section for a in cards[1:]))
    text = f"{first}. Also: {len(cards) - 1} more from {sections}." if len(cards) > 1 else first
    if len(text) <= PREHEADER_LIMIT:
        return text
    return text[: PREHEADER_LIMIT - 1].rsplit(" ", 1)[0].rstrip(" ,.;:") + "…"


@dataclass(frozen=True, slots=True)
class _Texts:
    """What differs between two section choices of one edition in one language."""

    subject: str
    preheader: str
    intro: str


class Renderer:
    """Templates loaded once; `render` turns a selection into a RenderedEdition, and
    `variants` makes every section choice of an edition from one inlining."""

    def __init__(self, templates_dir: Path) -> None:
        if not (templates_dir / HTML_TEMPLATE).is_file():
            raise RenderError(f"templates folder {templates_dir} has no {HTML_TEMPLATE}")
        self.env = Environment(
            loader=FileSystemLoader(templates_dir),
            autoescape=_autoescape,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=StrictUndefined,
        )
        self.env.filters["wrap"] = _wrap
        self.catalogue = Catalogue(templates_dir)
        # The environment the config checks subject templates in, so both agree.
        self.plain = subject_environment()
        self._subjects: dict[str, Template] = {}

    def language(self, locale: str, site: SiteView) -> str:
        """The language a subscriber's copy is rendered in."""
        return self.catalogue.resolve(locale, site.language)

    def subject(self, template: str, **values: object) -> str:
        """The subject line from the list's template, on one line."""
        try:
            if template not in self._subjects:
                self._subjects[template] = self.plain.from_string(template)
            rendered = self._subjects[template].render(**values)
        except TemplateError as exc:
            raise RenderError(f"subject template {template!r}: {exc}") from exc
        return " ".join(rendered.split())

    def _texts(self, selection: Selection, facts: EditionFacts, words: Words, day: date) -> _Texts:
        lead = selection.lead
        subject = facts.subject or self.subject(
            facts.subject_template,
            list_name=facts.list_name,
            site_name=facts.site.name,
            date_label=words.day(day),
            date=day,
            lead_title=lead.main.title if lead else "",
            article_count=len(selection.articles),
        )
        intro = words.intro(count=len(selection.stories), list_name=facts.list_name)
        return _Texts(subject, _preheader(selection), intro)

    def _context(
        self,
        *,
        texts: _Texts,
        subject_attr: str,
        pieces: list[Piece],
        facts: EditionFacts,
        words: Words,
        day: date,
        nonce: str,
    ) -> dict[str, object]:
        zone = facts.zone
        cards = [piece.story for piece in pieces if piece.kind == Kind.CARD]
        groups: dict[str, list[ArticleView]] = {}
        for story in cards:
            assert story is not None
            groups.setdefault(story.main.section, []).append(_view(story, zone, words, facts.links))
        note = facts.note
        return {
            "site": facts.site,
            "t": words,
            "nonce": nonce,
            "open_url": facts.links.open_url() if facts.links else None,
            "edition": EditionView(
                list_name=facts.list_name,
                list_slug=facts.list_slug,
                date_label=words.day(day),
                subject=texts.subject,
                subject_attr=subject_attr,
                preheader=texts.preheader,
                intro=texts.intro,
                note=Markup(note.html) if note else None,
                note_text=note.text if note else "",
                why=facts.description or words.why.format(list=facts.list_name, host=facts.host),
                archive_url=facts.archive_url,
                language=words.locale,
            ),
            "pieces": [
                (piece, _view(piece.story, zone, words, facts.links) if piece.story else None)
                for piece in pieces
            ],
            "lead": next(
                (
                    _view(piece.story, zone, words, facts.links)
                    for piece in pieces
                    if piece.kind == Kind.LEAD and piece.story
                ),
                None,
            ),
            "sections": [SectionView(name, tuple(views)) for name, views in groups.items()],
            "brief": [
                _view(piece.story, zone, words, facts.links)
                for piece in pieces
                if piece.kind == Kind.BRIEF and piece.story
            ],
            "slots": SlotsView(
                greeting_name=slot_marker(nonce, "greeting"),
                unsubscribe_url=slot_marker(nonce, "unsubscribe"),
                preferences_url=slot_marker(nonce, "preferences"),
            ),
        }

    def _template(self, name: str, context: dict[str, object]) -> str:
        try:
            return self.env.get_template(name).render(context)
        except TemplateError as exc:
            raise RenderError(f"cannot render the digest templates: {exc}") from exc

    def render(
        self,
        selection: Selection,
        *,
        facts: EditionFacts,
        edition_date: date,
        nonce: str,
        language: str | None = None,
    ) -> RenderedEdition:
        """Render both bodies once and inline the CSS once (in the site's language unless
        `language` is given)."""
        words = self.catalogue[language or self.language("", facts.site)]
        texts = self._texts(selection, facts, words, edition_date)
        context = self._context(
            texts=texts,
            subject_attr=texts.subject,
            pieces=layout(selection, max_cards=facts.max_cards),
            facts=facts,
            words=words,
            day=edition_date,
            nonce=nonce,
        )
        html = self._template(HTML_TEMPLATE, context)
        return RenderedEdition(
            subject=texts.subject,
            html=strip_markers(inline_css(html), nonce),
            text=self._template(TEXT_TEMPLATE, context).strip() + "\n",
            preheader=texts.preheader,
            nonce=nonce,
        )

    def variants(
        self,
        stories: Sequence[Story],
        *,
        facts: EditionFacts,
        edition_date: date,
        nonce: str,
        language: str,
    ) -> VariantMaker:
        """Inline every piece of the edition once, in `language`; the maker derives each
        section choice's copy from it without running premailer again."""
        words = self.catalogue[language]
        markers = _Texts(*(text_marker(nonce, name) for name in ("subject", "preheader", "intro")))
        context = self._context(
            texts=markers,
            subject_attr=text_marker(nonce, "subjectattr"),
            pieces=library(stories),
            facts=facts,
            words=words,
            day=edition_date,
            nonce=nonce,
        )
        inlined = InlinedLibrary(inline_css(self._template(HTML_TEMPLATE, context)), nonce)
        return VariantMaker(self, inlined, facts=facts, words=words, day=edition_date)


class VariantMaker:
    """One edition in one language: a section choice's copy, by joining inlined pieces."""

    def __init__(
        self,
        renderer: Renderer,
        inlined: InlinedLibrary,
        *,
        facts: EditionFacts,
        words: Words,
        day: date,
    ) -> None:
        self.renderer, self.inlined = renderer, inlined
        self.facts, self.words, self.day = facts, words, day

    def make(self, selection: Selection) -> RenderedEdition:
        """The copy of `selection` (the edition cut down to some sections): the same bytes
        `Renderer.render` gives, for the cost of the text part and some string joins."""
        nonce = self.inlined.nonce
        texts = self.renderer._texts(selection, self.facts, self.words, self.day)
        pieces = layout(selection, max_cards=self.facts.max_cards)
        subject, subject_attr = serialised(texts.subject)
        values = {
            "subject": subject,
            "subjectattr": subject_attr,
            "preheader": serialised(texts.preheader)[0],
            "intro": serialised(texts.intro)[0],
        }
        context = self.renderer._context(
            texts=texts,
            subject_attr=texts.subject,
            pieces=pieces,
            facts=self.facts,
            words=self.words,
            day=self.day,
            nonce=nonce,
        )
        return RenderedEdition(
            subject=texts.subject,
            html=self.inlined.join(pieces, values),
            text=self.renderer._template(TEXT_TEMPLATE, context).strip() + "\n",
            preheader=texts.preheader,
            nonce=nonce,
        )


def inline_css(html: str) -> str:
    """Move the <style> rules into style attributes; @media rules stay in a <style> block.

    Network access is off: a <link> to a remote stylesheet is an error, never a fetch.
    """
    from premailer import Premailer  # a big import: paid only by commands that render

    try:
        return str(
            Premailer(
                html,
                allow_network=False,
                keep_style_tags=False,
                remove_classes=False,
                strip_important=False,
                disable_validation=True,
                cssutils_logging_level=logging.CRITICAL,
            ).transform()
        )
    except Exception as exc:  # premailer raises bare Exceptions and lxml errors alike
        raise RenderError(f"cannot inline the CSS: {exc}") from exc
