"""The desk's numbers page: behind the session, an inline SVG bar per article, a CSV export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import DIGEST_READER, NOW, RecordingHandler, SeededTemplates
from tests.web.test_desk import Desk, make_desk

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/133.0"


@pytest.fixture
def clicked(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int], seeded_templates: SeededTemplates
) -> Iterator[tuple[Desk, int, list[str]]]:
    """A desk after a daily send whose first article got two clicks and second one."""
    for desk in make_desk(tmp_path, smtp_server[1], seeded_templates, f"sqlite:///{tmp_path}/d"):
        result = desk.publisher.send("daily", now=NOW)
        assert result.edition is not None
        (received,) = smtp_server[0].for_address(DIGEST_READER)
        html = received.message.get_body(("html",))
        assert html is not None
        links = list(
            dict.fromkeys(re.findall(r'href="(https?://[^"]+/c/[^"]+)"', html.get_content()))
        )
        desk.later(hours=1)
        for link in (links[0], links[0], links[1]):
            path = urlsplit(link).path
            answer = desk.client.get(path, headers={"user-agent": BROWSER}, follow_redirects=False)
            assert answer.status_code == 302
        yield desk, result.edition.id, links


def test_the_numbers_need_a_session(clicked: tuple[Desk, int, list[str]]) -> None:
    desk, edition_id, _ = clicked
    for path in ("/desk/stats", f"/desk/stats/{edition_id}", f"/desk/stats/{edition_id}.csv"):
        answer = desk.client.get(path, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/desk/sign-in")


def test_the_chart_draws_a_bar_per_article_as_wide_as_its_clicks(
    clicked: tuple[Desk, int, list[str]],
) -> None:
    desk, edition_id, _ = clicked
    desk.sign_in()
    page = desk.client.get(f"/desk/stats/{edition_id}")
    assert page.status_code == 200
    assert "script" not in page.headers["content-security-policy"]
    svg = re.search(r"<svg .*?</svg>", page.text, re.S)
    assert svg is not None
    bars = re.findall(r'<rect class="bar" [^>]*width="(\d+)"[^>]*data-clicks="(\d+)"', svg[0])
    counts = [int(clicks) for _, clicks in bars]
    assert counts[:2] == [2, 1] and sum(counts) == 3
    widths = [int(width) for width, _ in bars]
    assert widths[0] == 2 * widths[1] and widths[2:] == [0] * (len(widths) - 2)
    index = desk.client.get("/desk/stats")
    assert f'href="/desk/stats/{edition_id}"' in index.text


def test_the_csv_export_lists_each_article_with_its_clicks(
    clicked: tuple[Desk, int, list[str]],
) -> None:
    desk, edition_id, _ = clicked
    desk.sign_in()
    answer = desk.client.get(f"/desk/stats/{edition_id}.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [int(row["clicks"]) for row in rows[:2]] == [2, 1]
    assert {row["edition"] for row in rows} == {str(edition_id)}
    assert desk.client.get("/desk/stats/999").status_code == 404
