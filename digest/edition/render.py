"""Edition rendering: Jinja2 templates to an inlined HTML and a plain-text digest, once per edition.

Per-subscriber parts are left as slot markers (`slot_marker`) that the message builder fills in
afterwards, so neither Jinja2 nor premailer ever runs per subscriber.
"""

from __future__ import annotations

import logging
import re
import textwrap
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from digest.config import subject_environment
from digest.edition.selection import Selection
from digest.edition.stories import Story
from digest.errors import RenderError

HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"
SLOT_NAMES = ("greeting", "unsubscribe", "preferences")
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


@dataclass(frozen=True, slots=True)
class AlsoView:
    """Another article about the same story: an "Also:" link under the card."""

    title: str
    url: str


@dataclass(frozen=True, slots=True)
class ArticleView:
    """A story's card as the templates see it: the representative article's stored fields,
    display labels, and the story's other articles as links."""

    title: str
    summary: str
    section: str
    url: str
    image_url: str | None
    image_alt: str
    author: str | None
    published_label: str
    also: tuple[AlsoView, ...] = ()


@dataclass(frozen=True, slots=True)
class SectionView:
    name: str
    articles: tuple[ArticleView, ...]


@dataclass(frozen=True, slots=True)
class SiteView:
    name: str
    tagline: str
    base_url: str
    postal_address: str
    language: str


@dataclass(frozen=True, slots=True)
class EditionView:
    list_name: str
    list_slug: str
    date_label: str
    subject: str
    preheader: str
    why: str
    archive_url: str | None
    article_count: int


@dataclass(frozen=True, slots=True)
class SlotsView:
    greeting_name: str
    unsubscribe_url: str
    preferences_url: str


@dataclass(frozen=True, slots=True)
class RenderedEdition:
    """The edition's subject and bodies; the bodies still hold the slot markers of `nonce`."""

    subject: str
    html: str
    text: str
    preheader: str
    nonce: str


@dataclass(frozen=True, slots=True)
class EditionFacts:
    """What the renderer needs to know about the list and the site, besides the articles."""

    site: SiteView
    list_name: str
    list_slug: str
    why: str
    subject_template: str
    zone: ZoneInfo
    archive_url: str | None = None


def date_label(day: date) -> str:
    """'Thursday, 26 November 2026', whatever the process locale."""
    return f"{_DAYS[day.weekday()]}, {day.day} {_MONTHS[day.month - 1]} {day.year}"


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def _view(story: Story, zone: ZoneInfo) -> ArticleView:
    article = story.main
    local = article.published_at.astimezone(zone)
    return ArticleView(
        title=article.title,
        summary=article.summary,
        section=article.section,
        url=article.url,
        image_url=article.image_url,
        image_alt=article.image_alt,
        author=article.author,
        published_label=f"{local.day} {_MONTHS[local.month - 1][:3]}, {local:%H:%M}",
        also=tuple(AlsoView(title=other.title, url=other.url) for other in story.also),
    )


def _preheader(selection: Selection) -> str:
    cards = [story.main for story in selection.stories]
    first = cards[0].title if cards else ""
    sections = ", ".join(dict.fromkeys(a.section for a in cards[1:]))
    text = f"{first}. Also: {len(cards) - 1} more from {sections}." if len(cards) > 1 else first
    if len(text) <= PREHEADER_LIMIT:
        return text
    return text[: PREHEADER_LIMIT - 1].rsplit(" ", 1)[0].rstrip(" ,.;:") + "…"


class Renderer:
    """Templates loaded once; `render` turns a selection into a RenderedEdition."""

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
        # The environment the config checks subject templates in, so both agree.
        self.plain = subject_environment()

    def subject(self, template: str, **values: object) -> str:
        """The subject line from the list's template, on one line."""
        try:
            rendered = self.plain.from_string(template).render(**values)
        except TemplateError as exc:
            raise RenderError(f"subject template {template!r}: {exc}") from exc
        return " ".join(rendered.split())

    def render(
        self, selection: Selection, *, facts: EditionFacts, edition_date: date, nonce: str
    ) -> RenderedEdition:
        """Render both bodies once and inline the CSS once."""
        label = date_label(edition_date)
        lead = selection.lead
        subject = self.subject(
            facts.subject_template,
            list_name=facts.list_name,
            site_name=facts.site.name,
            date_label=label,
            date=edition_date,
            lead_title=lead.main.title if lead else "",
            article_count=len(selection.articles),
        )
        preheader = _preheader(selection)
        context = {
            "site": facts.site,
            "edition": EditionView(
                list_name=facts.list_name,
                list_slug=facts.list_slug,
                date_label=label,
                subject=subject,
                preheader=preheader,
                why=facts.why,
                archive_url=facts.archive_url,
                article_count=len(selection.stories),
            ),
            "lead": _view(lead, facts.zone) if lead else None,
            "sections": [
                SectionView(group.name, tuple(_view(s, facts.zone) for s in group.stories))
                for group in selection.sections
            ],
            "slots": SlotsView(
                greeting_name=slot_marker(nonce, "greeting"),
                unsubscribe_url=slot_marker(nonce, "unsubscribe"),
                preferences_url=slot_marker(nonce, "preferences"),
            ),
        }
        try:
            html = self.env.get_template(HTML_TEMPLATE).render(context)
            text = self.env.get_template(TEXT_TEMPLATE).render(context)
        except TemplateError as exc:
            raise RenderError(f"cannot render the digest templates: {exc}") from exc
        return RenderedEdition(
            subject=subject,
            html=inline_css(html),
            text=text.strip() + "\n",
            preheader=preheader,
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
