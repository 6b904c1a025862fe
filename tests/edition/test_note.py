"""The editor's note: stored per list and date, cleaned, shown under the greeting in both parts."""

from __future__ import annotations

import pytest

from digest.errors import InvalidInputError
from digest.operations.editions import draft_edition, edition_date, store_edition
from digest.operations.publisher import Publisher
from tests.conftest import NOW


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_note_shows_cleaned_under_the_greeting(publisher: Publisher) -> None:
    settings, store = publisher.settings, publisher.store
    daily = settings.list("daily")
    day = edition_date(daily, NOW)
    store.set_note("daily", day, "Vote *today*.<script>alert(1)</script>", now=NOW)
    draft = draft_edition(settings.site, store, publisher.renderer, daily, now=NOW)
    assert "<em>today</em>" in draft.html and "<script" not in draft.html
    assert (
        draft.html.index('class="greeting"')
        < draft.html.index("Vote")
        < draft.html.index('class="intro"')
    )
    assert "| Vote *today*." in draft.text
    store_edition(store, draft, now=NOW)
    with pytest.raises(InvalidInputError, match="already made"):
        store.set_note("daily", day, "too late", now=NOW)
