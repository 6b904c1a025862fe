"""A section variant joined from the inlined library is byte-identical to inlining it directly,
for every section subset of the seeded edition, in English and Hungarian."""

from __future__ import annotations

import itertools

import pytest

from digest.edition.selection import restrict
from digest.operations.editions import (
    Variants,
    draft_edition,
    stored_stories,
    unsaved_edition,
)
from digest.operations.publisher import Publisher
from tests.conftest import NOW


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("language", ["en", "hu"], ids=["en", "hu"])
def test_every_derived_variant_equals_a_direct_render(publisher: Publisher, language: str) -> None:
    settings = publisher.settings
    daily = settings.list("daily")
    draft = draft_edition(settings.site, publisher.store, publisher.renderer, daily, now=NOW)
    edition = unsaved_edition(draft, now=NOW)
    variants = Variants(settings.site, daily, publisher.store, publisher.renderer, edition)
    articles = publisher.store.articles_by_id(edition.article_ids)
    stories = stored_stories(edition, articles)
    sections = sorted({article.section for article in articles})
    assert len(sections) >= 4
    checked = 0
    for size in range(1, len(sections) + 1):
        for chosen in itertools.combinations(sections, size):
            derived = variants.variant(list(chosen), language)
            assert derived is not None
            direct = publisher.renderer.render(
                restrict(stories, {name.casefold() for name in chosen}),
                facts=variants.facts,
                edition_date=edition.edition_date,
                nonce=edition.slot_nonce,
                language=language,
            )
            assert derived.html == direct.html, chosen
            assert derived.text == direct.text, chosen
            checked += 1
    assert checked == 2 ** len(sections) - 1
