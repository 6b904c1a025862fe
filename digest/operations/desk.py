"""What the editors' desk shows: each list's next run and the edition it would send now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from digest.config import ListSettings, Settings
from digest.edition.clicks import PREVIEW
from digest.edition.render import Renderer, fill_slots
from digest.edition.selection import Selection, restrict
from digest.edition.structure import ArticleRef, SectionData, edition_data
from digest.edition.timing import next_slot
from digest.models import EditionShape
from digest.operations.approval import ApprovalView, approval_view
from digest.operations.archive import neutral_values, page_links
from digest.operations.editions import draft_edition, edition_date, stored_stories
from digest.store import Store


@dataclass(frozen=True, slots=True)
class DeskDraft:
    """One list's edition as it would go out now (the stored one, once it is made)."""

    mailing_list: ListSettings
    next_run: datetime | None  # in the list's own zone
    edition_date: date
    stored: bool
    subject: str
    html: str  # slots filled with neutral values, as the archive shows them
    text: str
    article_count: int
    approval: ApprovalView
    sections: tuple[SectionData, ...]  # the edition's structure: the lead, then by section
    shape: EditionShape
    excluded: tuple[ArticleRef, ...]  # what the shape leaves out, to take back
    note: str  # the editor's note, Markdown

    @property
    def size_kb(self) -> float:
        """The HTML part's size: Gmail clips a message past about 100 KB."""
        return len(self.html.encode()) / 1024


def desk_draft(
    settings: Settings, store: Store, renderer: Renderer, list_slug: str, *, now: datetime
) -> DeskDraft:
    """The list's edition for today's date at `now`: stored if made, else a fresh draft."""
    mailing_list = settings.list(list_slug)
    upcoming = next_slot(mailing_list, now)
    next_run = upcoming.astimezone(mailing_list.zone) if upcoming else None
    in_html, in_text = (
        neutral_values(settings, for_html=flag, page=PREVIEW) for flag in (True, False)
    )
    base = settings.site.base_url
    approval = approval_view(store, mailing_list, now=now)
    day = edition_date(mailing_list, now)
    shape = store.edition_shape(list_slug, day)
    left_out = store.articles_by_id(sorted(shape.excluded))
    excluded = tuple(ArticleRef(a.id, a.title, a.url) for a in left_out)
    note = store.edition_note(list_slug, day) or ""
    stored = store.edition_for(list_slug, day)
    if stored is not None:
        stories = stored_stories(stored, store.articles_by_id(stored.article_ids))
        return DeskDraft(
            mailing_list=mailing_list,
            next_run=next_run,
            edition_date=stored.edition_date,
            stored=True,
            subject=stored.subject,
            html=page_links(fill_slots(stored.html, stored.slot_nonce, in_html), base, PREVIEW),
            text=page_links(fill_slots(stored.text, stored.slot_nonce, in_text), base, PREVIEW),
            article_count=len(stored.article_ids),
            approval=approval,
            sections=_sections(restrict(stories, None), list_slug, day, stored.subject),
            shape=shape,
            excluded=excluded,
            note=note,
        )
    draft = draft_edition(settings.site, store, renderer, mailing_list, now=now)
    return DeskDraft(
        mailing_list=mailing_list,
        next_run=next_run,
        edition_date=draft.edition_date,
        stored=False,
        subject=draft.subject,
        html=page_links(fill_slots(draft.html, draft.slot_nonce, in_html), base, PREVIEW),
        text=page_links(fill_slots(draft.text, draft.slot_nonce, in_text), base, PREVIEW),
        article_count=len(draft.selection.articles),
        approval=approval,
        sections=_sections(draft.selection, list_slug, day, draft.subject),
        shape=shape,
        excluded=excluded,
        note=note,
    )


def _sections(
    selection: Selection, list_slug: str, day: date, subject: str
) -> tuple[SectionData, ...]:
    data = edition_data(selection, list_slug=list_slug, edition_date=day, subject=subject)
    return data.sections
