"""Editions: choose the articles, render once, store; and the per-edition message template."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from digest.config import ListSettings, Settings, SiteSettings
from digest.edition.message import ListIdentity, MessageTemplate, Recipient, Sender
from digest.edition.names import clean_name
from digest.edition.note import editor_note
from digest.edition.render import Renderer, VariantMaker
from digest.edition.selection import Selection, restrict, select_articles
from digest.edition.signing import preferences_token
from digest.edition.stories import Story
from digest.edition.tokens import message_ids, unsubscribe_token
from digest.edition.verp import verp_address
from digest.edition.views import EditionFacts, SiteView
from digest.models import Article, Edition, Subscriber
from digest.operations.clicks import click_links, reader_part
from digest.store import Store

# How far back "no repeats" looks for articles a list already sent, and so how old a late
# arrival may be and still join an edition: an older one could not be told from a repeat.
REPEAT_WINDOW = timedelta(days=31)


@dataclass(frozen=True, slots=True)
class Draft:
    """An edition as it would be made now: selection and rendering, not yet stored."""

    list_slug: str
    edition_date: date
    since: datetime
    cutoff: datetime
    selection: Selection
    subject: str
    html: str
    text: str
    slot_nonce: str


def edition_date(mailing_list: ListSettings, now: datetime) -> date:
    """The list's local calendar date at `now`: an edition is unique per list and this date."""
    return now.astimezone(mailing_list.zone).date()


def _secret(site: SiteSettings) -> bytes:
    return site.unsubscribe_secret.get_secret_value().encode()


def slot_nonce(site: SiteSettings, list_slug: str, day: date) -> str:
    """The edition's slot-marker nonce: stable, so a preview and the send are byte-identical,
    and keyed, so no article text can forge a marker."""
    return hmac.new(
        _secret(site), f"slots:{list_slug}:{day.isoformat()}".encode(), hashlib.sha256
    ).hexdigest()[:16]


def archive_path(list_slug: str, day: date) -> str:
    """The stable path of a sent edition on the web app: /archive/<list>/<YYYY-MM-DD>."""
    return f"/archive/{list_slug}/{day.isoformat()}"


def facts(
    site: SiteSettings,
    mailing_list: ListSettings,
    day: date,
    *,
    note: str | None = None,
    subject: str | None = None,
) -> EditionFacts:
    """What the renderer needs to know about the site and the list for the edition of `day`
    (`note`: the Markdown of its editor's note, `subject`: the editor's subject, if set)."""
    return EditionFacts(
        site=SiteView(
            name=site.name,
            tagline=site.tagline,
            base_url=site.base_url,
            postal_address=site.postal_address,
            language=site.language,
        ),
        list_name=mailing_list.name,
        list_slug=mailing_list.slug,
        description=mailing_list.description,
        host=urlsplit(site.base_url).hostname or site.base_url,
        subject_template=mailing_list.subject,
        zone=mailing_list.zone,
        archive_url=site.base_url + archive_path(mailing_list.slug, day),
        max_cards=mailing_list.max_cards,
        note=editor_note(note) if note else None,
        subject=subject,
        links=click_links(site, mailing_list, day, nonce=slot_nonce(site, mailing_list.slug, day)),
    )


def draft_edition(
    site: SiteSettings,
    store: Store,
    renderer: Renderer,
    mailing_list: ListSettings,
    *,
    now: datetime,
) -> Draft:
    """Select and render what the list's edition would hold at `now`; stores nothing.

    The candidates are the articles published since the previous edition's cutoff and those
    first stored since it was made (late or backdated), less what the list already sent.
    An editor's shape for the date applies: what it excludes stays unsent, so it may still
    join a later edition.
    """
    day = edition_date(mailing_list, now)
    shape = store.edition_shape(mailing_list.slug, day)
    previous = store.latest_edition(mailing_list.slug, before=day)
    since = previous.cutoff if previous else now - timedelta(hours=mailing_list.lookback_hours)
    candidates = store.edition_candidates(
        published_after=since,
        seen_after=previous.created_at if previous else None,
        oldest=now - REPEAT_WINDOW,
        until=now,
    )
    selection = select_articles(
        candidates,
        now=now,
        sections=mailing_list.sections,
        limit=mailing_list.max_articles,
        exclude_ids=store.sent_article_ids(mailing_list.slug, since=now - REPEAT_WINDOW),
        story_threshold=mailing_list.story_grouping,
        shape=shape,
    )
    nonce = slot_nonce(site, mailing_list.slug, day)
    note = store.edition_note(mailing_list.slug, day)
    rendered = renderer.render(
        selection,
        facts=facts(site, mailing_list, day, note=note, subject=shape.subject),
        edition_date=day,
        nonce=nonce,
    )
    return Draft(
        list_slug=mailing_list.slug,
        edition_date=day,
        since=since,
        cutoff=now,
        selection=selection,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        slot_nonce=nonce,
    )


def store_edition(store: Store, draft: Draft, *, now: datetime) -> tuple[Edition, bool]:
    """Keep the draft as the list's edition for its date; (edition, created)."""
    return store.create_edition(
        list_slug=draft.list_slug,
        edition_date=draft.edition_date,
        now=now,
        cutoff=draft.cutoff,
        subject=draft.subject,
        html=draft.html,
        text=draft.text,
        article_ids=[article.id for article in draft.selection.articles],
        slot_nonce=draft.slot_nonce,
        stories=story_ids(draft.selection),
    )


def story_ids(selection: Selection) -> tuple[tuple[str, ...], ...]:
    """Each story's article ids in reading order: what an edition records of its structure."""
    return tuple(tuple(a.id for a in story.articles) for story in selection.stories)


def stored_stories(edition: Edition, articles: Sequence[Article]) -> list[Story]:
    """A stored edition's stories rebuilt from its articles (an article since deleted is left
    out); an edition made before stories were recorded has one story per article."""
    found = {article.id: article for article in articles}
    groups = edition.stories or tuple((article_id,) for article_id in edition.article_ids)
    stories = []
    for ids in groups:
        present = [found[i] for i in ids if i in found]
        if present:
            stories.append(Story(main=present[0], also=tuple(present[1:])))
    return stories


def message_template(
    site: SiteSettings,
    mailing_list: ListSettings,
    *,
    edition_day: date,
    subject: str,
    html: str,
    text: str,
    nonce: str,
) -> MessageTemplate:
    """The edition's message, serialised once for every subscriber."""
    return MessageTemplate(
        sender=Sender(
            name=mailing_list.from_name,
            address=mailing_list.from_address,
            reply_to=mailing_list.reply_to,
        ),
        identity=ListIdentity(
            slug=mailing_list.slug,
            name=mailing_list.name,
            mail_domain=site.mail_domain,
            base_url=site.base_url,
        ),
        subject=subject,
        html_body=html,
        text_body=text,
        nonce=nonce,
        feedback_id=f"{edition_day:%Y%m%d}:{mailing_list.slug}:digest:{site.feedback_sender_id}",
    )


def template_for(
    site: SiteSettings, mailing_list: ListSettings, edition: Edition
) -> MessageTemplate:
    """The message template of a stored edition of the list."""
    return message_template(
        site,
        mailing_list,
        edition_day=edition.edition_date,
        subject=edition.subject,
        html=edition.html,
        text=edition.text,
        nonce=edition.slot_nonce,
    )


@dataclass(frozen=True, slots=True)
class Variant:
    """One rendering of an edition: the bodies (with slot markers) and their message template."""

    subject: str
    html: str
    text: str
    template: MessageTemplate


class Variants:
    """An edition's renderings, one per (language, section choice), made on first use.

    A subscriber who picked sections gets the edition cut down to them, in their language;
    premailer runs once per language (see `Renderer.variants`) and never per subscriber or
    per choice. No choice means every section; the stored edition is the site's language.
    """

    def __init__(
        self,
        site: SiteSettings,
        mailing_list: ListSettings,
        store: Store,
        renderer: Renderer,
        edition: Edition,
    ) -> None:
        self.site, self.mailing_list, self.edition = site, mailing_list, edition
        self.store, self.renderer = store, renderer
        self.facts = facts(
            site,
            mailing_list,
            edition.edition_date,
            note=store.edition_note(mailing_list.slug, edition.edition_date),
            subject=store.edition_shape(mailing_list.slug, edition.edition_date).subject,
        )
        full = Variant(
            edition.subject, edition.html, edition.text, template_for(site, mailing_list, edition)
        )
        home = renderer.language("", self.facts.site)
        self._made: dict[tuple[str, frozenset[str] | None], Variant | None] = {(home, None): full}
        self._makers: dict[str, VariantMaker] = {}
        self._stories: list[Story] | None = None

    def variant(self, sections: Sequence[str] | None, locale: str = "") -> Variant | None:
        """The rendering for this choice and locale; None if it leaves nothing to send."""
        language = self.renderer.language(locale, self.facts.site)
        key = (language, frozenset(name.casefold() for name in sections) if sections else None)
        if key not in self._made:
            self._made[key] = self._render(language, key[1])
        return self._made[key]

    def __call__(self, sections: tuple[str, ...] | None, locale: str) -> MessageTemplate | None:
        """The message template for a subscriber with this choice (what delivery needs)."""
        chosen = self.variant(sections, locale)
        return chosen.template if chosen else None

    def selection(self, sections: Sequence[str] | None) -> Selection:
        """The edition's stories cut down to this choice (None or empty: every section)."""
        return restrict(self._all_stories(), sections or None)

    def _all_stories(self) -> list[Story]:
        if self._stories is None:
            articles = self.store.articles_by_id(self.edition.article_ids)
            self._stories = stored_stories(self.edition, articles)
        return self._stories

    def _render(self, language: str, sections: frozenset[str] | None) -> Variant | None:
        selection = self.selection(sorted(sections) if sections else None)
        if sections and not selection:
            return None  # an empty whole edition still renders (send_when_empty, previews)
        if language not in self._makers:
            self._makers[language] = self.renderer.variants(
                self._all_stories(),
                facts=self.facts,
                edition_date=self.edition.edition_date,
                nonce=self.edition.slot_nonce,
                language=language,
            )
        rendered = self._makers[language].make(selection)
        template = message_template(
            self.site,
            self.mailing_list,
            edition_day=self.edition.edition_date,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            nonce=rendered.nonce,
        )
        return Variant(rendered.subject, rendered.html, rendered.text, template)


def unsaved_edition(draft: Draft, *, now: datetime) -> Edition:
    """A draft seen as an edition (number 0, never stored), for previews."""
    return Edition(
        id=0,
        list_slug=draft.list_slug,
        edition_date=draft.edition_date,
        created_at=now,
        cutoff=draft.cutoff,
        subject=draft.subject,
        html=draft.html,
        text=draft.text,
        article_ids=tuple(article.id for article in draft.selection.articles),
        slot_nonce=draft.slot_nonce,
        stories=story_ids(draft.selection),
    )


def edition_message_ids(site: SiteSettings, list_slug: str, day: date) -> Callable[[int], str]:
    """The Message-ID of each subscriber's copy of one edition, the same on every attempt; what
    they share is worked out once (queueing a list makes one per subscriber)."""
    return message_ids(
        secret=_secret(site), domain=site.mail_domain, list_slug=list_slug, edition_date=day
    )


def recipient(
    site: SiteSettings,
    mailing_list: ListSettings,
    day: date,
    subscriber: Subscriber,
    *,
    message_id: str | None = None,
) -> Recipient:
    """One subscriber's per-message values for a list's edition of `day`; the reader token
    (one more HMAC) only where the list counts clicks per subscriber. `message_id` is the one
    the ledger holds for a claimed delivery (else it is derived): every attempt reuses it.

    The stored name is cleaned for header and greeting; one that cannot be used at all gives
    the greeting fallback and a bare To address, so that delivery still goes out.
    """
    name = clean_name(subscriber.name)
    list_slug = mailing_list.slug
    return Recipient(
        address=subscriber.email,
        name=name,
        greeting_name=name or site.greeting_fallback,
        message_id=message_id or edition_message_ids(site, list_slug, day)(subscriber.id),
        unsubscribe_token=unsubscribe_token(
            secret=_secret(site),
            key_id=site.unsubscribe_key_id,
            subscriber_id=subscriber.id,
            list_slug=list_slug,
        ),
        preferences_token=preferences_token(
            subscriber.id, secret=_secret(site), key_id=site.unsubscribe_key_id
        ),
        reader_token=reader_part(site, mailing_list, day, subscriber.id),
    )


def envelope_sender(
    settings: Settings, mailing_list: ListSettings, edition_id: int, subscriber_id: int
) -> str:
    """Where one delivery's bounces go: [bounces] address (else the list's From); with VERP,
    that address's own variant for this edition and subscriber."""
    base = settings.envelope_sender(mailing_list)
    if not settings.bounces.verp:
        return base
    return verp_address(
        base, secret=_secret(settings.site), edition_id=edition_id, subscriber_id=subscriber_id
    )
