"""Approve and test send on the desk, through Starlette's TestClient on a real database and a
real SMTP server: both need a session and the form's CSRF token; an approved edition reaches
the server with the sweep of `digest run`, a test send goes at once and is no delivery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.models import Verdict
from digest.service.scheduler import Runner
from tests.conftest import RecordingHandler, SeededTemplates
from tests.operations.test_approval import daily_mail, readers_subjects, requiring
from tests.support.databases import sqlite_url
from tests.web.test_desk import EDITOR, Desk, make_desk


@pytest.fixture
def held_desk(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int], seeded_templates: SeededTemplates
) -> Iterator[Desk]:
    """A desk whose daily list waits for approval."""
    yield from make_desk(
        tmp_path, smtp_server[1], seeded_templates, sqlite_url(tmp_path), adjust=requiring
    )


def test_an_editor_approves_on_the_desk_and_the_sweep_delivers_it(
    held_desk: Desk, smtp_server: tuple[RecordingHandler, int]
) -> None:
    desk, (handler, _) = held_desk, smtp_server
    runner = Runner(desk.publisher, clock=lambda: desk.clock[0])
    runner.sweep()  # 07:00 in Budapest: the daily run makes the edition and holds it
    edition = desk.publisher.store.latest_edition("daily")
    assert edition is not None and daily_mail(handler) == []
    desk.sign_in()
    today = desk.client.get("/desk").text
    assert "State: <strong>waiting</strong>" in today
    assert 'action="/desk/approve/daily"' in today
    assert 'action="/desk/approve/weekly"' not in today  # weekly sends by itself

    forged = desk.client.post("/desk/approve/daily", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert desk.publisher.store.verdict_for(edition.id) is None
    runner.deliver_due()
    assert daily_mail(handler) == []

    form = {"csrf_token": desk.csrf("/desk")}
    done = desk.client.post("/desk/approve/daily", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/desk"
    verdict = desk.publisher.store.verdict_for(edition.id)
    assert verdict is not None and verdict.verdict is Verdict.APPROVED
    assert verdict.decided_by == EDITOR
    assert f"State: <strong>approved by {EDITOR} at 07:00 CET" in (desk.client.get("/desk").text)
    runner.deliver_due()
    mail = daily_mail(handler)
    assert len(mail) == len(desk.publisher.store.active_subscribers("daily")) > 0
    assert {str(message["Subject"]) for message in mail} == readers_subjects(
        desk.publisher, edition
    )
    assert f"State: <strong>sent, by {EDITOR} at 07:00 CET" in desk.client.get("/desk").text

    again = desk.client.post("/desk/approve/daily", data={"csrf_token": desk.csrf("/desk")})
    assert again.status_code == 409 and "is waiting for approval" in again.text


def test_a_test_send_goes_to_one_address_marked_and_is_no_delivery(
    held_desk: Desk, smtp_server: tuple[RecordingHandler, int]
) -> None:
    desk, (handler, _) = held_desk, smtp_server
    desk.sign_in()
    to = "proof.reader@example.org"
    refused = desk.client.post("/desk/test-send/daily", data={"csrf_token": "x", "to": to})
    assert refused.status_code == 403 and handler.messages == []
    bad = desk.client.post(
        "/desk/test-send/daily", data={"csrf_token": desk.csrf("/desk"), "to": "not an address"}
    )
    assert bad.status_code == 400 and "Test send failed" in bad.text and handler.messages == []

    sent = desk.client.post(
        "/desk/test-send/daily", data={"csrf_token": desk.csrf("/desk"), "to": to}
    )
    assert sent.status_code == 200 and f"Test sent to {to}." in sent.text
    (received,) = handler.messages
    assert received.recipients == [to]
    draft_subject = desk.client.get("/desk").text.split("Subject: ", 1)[1].split("</p>", 1)[0]
    assert str(received.message["Subject"]) == f"[Test] {draft_subject}"
    assert desk.publisher.store.latest_edition("daily") is None  # no edition, no ledger row
