"""An editor's shape of a draft edition: kept per list and date on each backend, applied by
`draft_edition` (the path of `digest send`, `digest run` and the scheduler), refused once the
edition is made; an excluded article stays unsent for a later edition."""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy

import pytest

from digest.edition.shaping import checked_subject, excluded, moved, pinned, with_subject
from digest.errors import HeaderInjectionError, InvalidInputError
from digest.models import EditionShape
from digest.operations.editions import draft_edition, edition_date, store_edition
from digest.operations.publisher import Publisher
from tests.conftest import NOW, RecordingHandler


def draft(publisher: Publisher, **shift: float) -> object:
    settings = publisher.settings
    return draft_edition(
        settings.site,
        publisher.store,
        publisher.renderer,
        settings.list("daily"),
        now=NOW + timedelta(**shift),
    )


def test_a_shape_is_kept_per_list_and_date_and_an_empty_one_removes_it(
    publisher: Publisher,
) -> None:
    store = publisher.store
    day = edition_date(publisher.settings.list("daily"), NOW)
    assert store.edition_shape("daily", day) == EditionShape()
    shape = EditionShape(
        lead="a-1", excluded=frozenset({"b", "c"}), section_order=("World", "Sport"), subject="Ő"
    )
    store.set_shape("daily", day, shape, now=NOW)
    assert store.edition_shape("daily", day) == shape
    assert store.edition_shape("weekly", day) == EditionShape()
    assert store.edition_shape("daily", day + timedelta(days=1)) == EditionShape()
    store.set_shape("daily", day, EditionShape(subject="Again"), now=NOW)
    assert store.edition_shape("daily", day) == EditionShape(subject="Again")
    store.set_shape("daily", day, EditionShape(), now=NOW)
    assert store.edition_shape("daily", day) == EditionShape()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_draft_edition_honours_every_part_of_the_shape(publisher: Publisher) -> None:
    store = publisher.store
    day = edition_date(publisher.settings.list("daily"), NOW)
    plain = draft(publisher)
    sections = [group.name for group in plain.selection.sections]
    assert plain.selection.lead is not None and len(sections) >= 2
    gone = plain.selection.sections[0].stories[0].main
    chosen = plain.selection.sections[-1].stories[-1].main
    shape = EditionShape(
        lead=chosen.id,
        excluded=frozenset({gone.id}),
        section_order=(sections[-1],),
        subject="Election <b>night</b> & more",
    )
    store.set_shape("daily", day, shape, now=NOW)
    shaped = draft(publisher)
    ids = [article.id for article in shaped.selection.articles]
    assert gone.id not in ids and gone.title not in shaped.html and gone.title not in shaped.text
    assert shaped.selection.lead is not None and chosen.id in {
        a.id for a in shaped.selection.lead.articles
    }
    rest = [group.name for group in shaped.selection.sections]
    if rest and sections[-1] in rest:
        assert rest[0] == sections[-1]
    assert shaped.subject == "Election <b>night</b> & more"
    assert "<title>Election &lt;b&gt;night&lt;/b&gt; &amp; more</title>" in shaped.html
    assert "<b>night</b>" not in shaped.html
    # Nothing else went: the plain draft's other articles are all still there.
    assert {a.id for a in plain.selection.articles} - {gone.id} <= set(ids)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_section_order_puts_the_editors_sections_first(publisher: Publisher) -> None:
    day = edition_date(publisher.settings.list("daily"), NOW)
    before = [group.name for group in draft(publisher).selection.sections]
    assert len(before) >= 2
    order = moved(EditionShape(), before, before[-1], -1).section_order
    publisher.store.set_shape("daily", day, EditionShape(section_order=order), now=NOW)
    after = [group.name for group in draft(publisher).selection.sections]
    assert after == list(order) and after != before


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_excluded_article_is_not_sent_and_joins_the_next_edition(
    publisher: Publisher,
) -> None:
    store = publisher.store
    daily = publisher.settings.list("daily")
    day = edition_date(daily, NOW)
    plain = draft(publisher)
    gone = plain.selection.articles[-1]
    store.set_shape("daily", day, EditionShape(excluded=frozenset({gone.id})), now=NOW)
    edition, created = store_edition(store, draft(publisher), now=NOW)
    assert created and gone.id not in edition.article_ids
    assert gone.id not in store.sent_article_ids("daily", since=NOW - timedelta(days=31))
    with pytest.raises(InvalidInputError, match="already made; its shape can no longer change"):
        store.set_shape("daily", day, EditionShape(subject="Too late"), now=NOW)


def test_the_subject_must_be_one_clean_line() -> None:
    for bad in ("Two\r\nBcc: x@example.com", "line\nbreak", "cr\ronly"):
        with pytest.raises(HeaderInjectionError, match="one line"):
            checked_subject(bad)
    with pytest.raises(InvalidInputError, match="control character"):
        checked_subject("bell\x07")
    with pytest.raises(InvalidInputError, match="at most 200"):
        checked_subject("x" * 201)
    assert checked_subject("  Good evening  ") == "Good evening"
    assert with_subject(EditionShape(subject="Old"), "  ").subject is None


def test_pinning_and_excluding_the_same_article_undo_each_other() -> None:
    shape = excluded(EditionShape(), "a")
    assert pinned(shape, "a") == EditionShape(lead="a")
    assert excluded(EditionShape(lead="a"), "a") == EditionShape(excluded=frozenset({"a"}))
    assert excluded(EditionShape(excluded=frozenset({"a"})), "a", out=False) == EditionShape()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_delivered_mail_carries_the_subject_override(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    handler, _ = smtp_server
    store = publisher.store
    day = edition_date(publisher.settings.list("daily"), NOW)
    store.set_shape("daily", day, EditionShape(subject="Választás: ő & <é>"), now=NOW)
    assert publisher.send("daily", now=NOW).created  # `digest send`: draft_edition, then deliver
    assert handler.messages
    for received in handler.messages:
        message = email.message_from_bytes(received.data, policy=policy.default)
        assert str(message["Subject"]) == "Választás: ő & <é>"
