"""Subject templates: what the config accepts is exactly what the renderer can render."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from digest.config import ListSettings
from digest.config.subjects import SUBJECT_SAMPLE
from digest.edition.render import EditionFacts, Renderer, SiteView
from digest.edition.selection import Selection
from tests.conftest import ROOT

EVERY_NAME = " ".join(f"{{{{ {name} }}}}" for name in SUBJECT_SAMPLE)


def render_subject(template: str) -> str:
    facts = EditionFacts(
        site=SiteView("Budapest Post", "", "https://budapestpost.example", "", "en"),
        list_name="Daily",
        list_slug="daily",
        description="",
        host="budapestpost.example",
        subject_template=template,
        zone=ZoneInfo("Europe/Budapest"),
    )
    rendered = Renderer(ROOT / "templates").render(
        Selection(lead=None, sections=()), facts=facts, edition_date=date(2026, 3, 2), nonce="n"
    )
    return rendered.subject


def test_every_name_the_config_allows_is_one_the_renderer_passes() -> None:
    ListSettings(slug="daily", name="Daily", subject=EVERY_NAME)
    assert render_subject(EVERY_NAME).startswith("Daily Budapest Post Monday, 2 March 2026")


@pytest.mark.parametrize("template", ["{{ reader_name }}", "{{ list_name", "{{ date_label|nope }}"])
def test_a_subject_the_renderer_could_not_render_is_refused_at_load(template: str) -> None:
    with pytest.raises(ValidationError, match="not a usable subject template"):
        ListSettings(slug="daily", name="Daily", subject=template)
