"""What the digest templates see: plain frozen views of the site, the edition and its stories."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from markupsafe import Markup

from digest.edition.clicks import ClickLinks
from digest.edition.note import EditorNote


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
    subject_attr: str
    preheader: str
    intro: str
    note: Markup | None
    note_text: str
    why: str
    archive_url: str | None
    language: str


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
    """What the renderer needs to know about the list and the site, besides the articles.

    `description` is the list's own footer line (else the language's "why" sentence names
    the list and `host`); `note` is the editor's note of the edition, if any;
    `subject`, if set, is the editor's subject line for it; `links`, when set, turns each
    article's URL into its counted link.
    """

    site: SiteView
    list_name: str
    list_slug: str
    description: str
    host: str
    subject_template: str
    zone: ZoneInfo
    archive_url: str | None = None
    max_cards: int | None = None
    note: EditorNote | None = None
    subject: str | None = None  # the editor's subject line, instead of the template's
    # Counted links (`digest.edition.clicks`); None leaves the article URLs as they are.
    links: ClickLinks | None = None
