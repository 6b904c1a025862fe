"""Shaping today's draft on the desk, through Starlette's TestClient on a real database: each
change needs a session and the form's CSRF token, is kept for the edition date and shows at
once in the draft; a bad subject and a made edition are refused with the reason."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.models import EditionShape
from digest.operations.editions import draft_edition, edition_date, store_edition
from tests.conftest import NOW, RecordingHandler, SeededTemplates
from tests.web.test_desk import Desk, make_desk


@pytest.fixture
def desk(
    tmp_path: Path,
    smtp_server: tuple[RecordingHandler, int],
    database_url: str,
    seeded_templates: SeededTemplates,
) -> Iterator[Desk]:
    yield from make_desk(tmp_path, smtp_server[1], seeded_templates, database_url)


def daily_draft(desk: Desk) -> object:
    settings = desk.settings
    return draft_edition(
        settings.site, desk.publisher.store, desk.publisher.renderer, settings.list("daily"),
        now=NOW,
    )  # fmt: skip


def shape_of(desk: Desk) -> EditionShape:
    return desk.publisher.store.edition_shape(
        "daily", edition_date(desk.settings.list("daily"), NOW)
    )


def post(desk: Desk, csrf: bool = True, **fields: str) -> object:
    form = {**({"csrf_token": desk.csrf("/desk")} if csrf else {}), **fields}
    return desk.client.post("/desk/shape/daily", data=form, follow_redirects=False)


def test_a_change_needs_the_forms_csrf_token(desk: Desk) -> None:
    desk.sign_in()
    article = daily_draft(desk).selection.articles[-1]
    refused = post(desk, csrf=False, action="exclude", article=article.id)
    assert refused.status_code == 403
    forged = desk.client.post(
        "/desk/shape/daily",
        data={"csrf_token": "forged", "action": "exclude", "article": article.id},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert shape_of(desk) == EditionShape()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_excluding_an_article_shows_the_new_draft_and_including_takes_it_back(
    desk: Desk,
) -> None:
    desk.sign_in()
    page = desk.client.get("/desk").text
    assert 'aria-label="Exclude “' in page and "<h3>Stories</h3>" in page
    article = daily_draft(desk).selection.articles[-1]
    done = post(desk, action="exclude", article=article.id)
    assert done.status_code == 303 and done.headers["location"] == "/desk#list-daily"
    assert shape_of(desk).excluded == {article.id}
    page = desk.client.get("/desk").text
    assert "Left out of this edition" in page
    assert f'aria-label="Include “{html.escape(article.title)}”"' in page
    assert article.title not in desk.client.get("/desk/draft/daily").text
    assert post(desk, action="include", article=article.id).status_code == 303
    assert shape_of(desk) == EditionShape()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_pin_move_subject_and_note_each_change_the_draft(desk: Desk) -> None:
    desk.sign_in()
    before = daily_draft(desk)
    last = before.selection.sections[-1]
    assert post(desk, action="lead", article=last.stories[0].main.id).status_code == 303
    after = daily_draft(desk)
    assert after.selection.lead is not None
    assert after.selection.lead.main.id == last.stories[0].main.id
    names = [group.name for group in after.selection.sections]
    assert post(desk, action="down", section=names[0]).status_code == 303
    assert [group.name for group in daily_draft(desk).selection.sections][:2] == [
        names[1],
        names[0],
    ][: len(names)]
    assert post(desk, action="subject", subject="Tonight <live>").status_code == 303
    frame = desk.client.get("/desk/draft/daily").text
    assert "<title>Tonight &lt;live&gt;</title>" in frame
    assert "Subject: Tonight &lt;live&gt;" in desk.client.get("/desk").text
    assert post(desk, action="note", note="Polls close at *eight*.").status_code == 303
    assert "<em>eight</em>" in desk.client.get("/desk/draft/daily").text
    assert post(desk, action="note", note="  ").status_code == 303
    assert "Polls close" not in desk.client.get("/desk/draft/daily").text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_bad_subject_or_unknown_article_is_refused_with_the_reason(desk: Desk) -> None:
    desk.sign_in()
    crlf = post(desk, action="subject", subject="Hi\r\nBcc: all@example.com")
    assert crlf.status_code == 400 and "must be one line" in crlf.text
    unknown = post(desk, action="exclude", article="no-such-article")
    assert unknown.status_code == 400 and "no article with id" in unknown.text
    assert post(desk, action="frobnicate").status_code == 400
    assert shape_of(desk) == EditionShape()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_once_the_edition_is_made_shaping_is_refused(desk: Desk) -> None:
    desk.sign_in()
    draft = daily_draft(desk)
    store_edition(desk.publisher.store, draft, now=NOW)
    page = desk.client.get("/desk").text
    assert "The edition is made: shaping applies to the draft only." in page
    refused = post(desk, action="exclude", article=draft.selection.articles[-1].id)
    assert refused.status_code == 400 and "already made" in refused.text
    note = post(desk, action="note", note="Late")
    assert note.status_code == 400 and "already made" in note.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_preview_switches_between_light_and_dark(desk: Desk) -> None:
    desk.sign_in()
    dark = desk.client.get("/desk/draft/daily", params={"scheme": "dark"}).text
    light = desk.client.get("/desk/draft/daily", params={"scheme": "light"}).text
    sent = desk.client.get("/desk/draft/daily").text
    assert "@media (prefers-color-scheme: dark)" in sent
    assert "@media all" in dark and "prefers-color-scheme: dark" not in dark
    assert "@media not all" in light and "prefers-color-scheme: dark" not in light
    page = desk.client.get("/desk", params={"scheme": "dark"}).text
    assert 'src="/desk/draft/daily?scheme=dark"' in page
