"""The desk's sending, history and subscriber pages through Starlette's TestClient on a real
database: refused without a session or CSRF, unsubscribe/resubscribe, the CSV upload's report
and its size cap."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from digest.models import DeliveryState, EditionStatus, SubscriptionStatus, UnsubscribeChannel
from digest.store import Enrolment, Outcome
from digest.web.desk import SESSION_COOKIE
from tests.conftest import NOW, RecordingHandler, SeededTemplates
from tests.support.databases import sqlite_url
from tests.web.test_desk import Desk, desk_cookie_of_another_install, make_desk


@pytest.fixture
def desk(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int], seeded_templates: SeededTemplates
) -> Iterator[Desk]:
    yield from make_desk(tmp_path, smtp_server[1], seeded_templates, sqlite_url(tmp_path))


@pytest.fixture
def desk_on_each_backend(
    tmp_path: Path,
    smtp_server: tuple[RecordingHandler, int],
    database_url: str,
    seeded_templates: SeededTemplates,
) -> Iterator[Desk]:
    yield from make_desk(tmp_path, smtp_server[1], seeded_templates, database_url)


NEW_URLS = [
    ("GET", "/desk/editions"),
    ("GET", "/desk/editions/1"),
    ("GET", "/desk/editions/1/live.json"),
    ("GET", "/desk/live.js"),
    ("POST", "/desk/editions/1/pause"),
    ("POST", "/desk/editions/1/resume"),
    ("POST", "/desk/editions/1/retry"),
    ("GET", "/desk/subscribers"),
    ("GET", "/desk/subscribers/1"),
    ("POST", "/desk/subscribers/1/unsubscribe"),
    ("POST", "/desk/subscribers/1/resubscribe"),
    ("GET", "/desk/subscribers/import"),
    ("POST", "/desk/subscribers/import"),
]
POSTS = [path for method, path in NEW_URLS if method == "POST"]


def one_edition(desk: Desk) -> tuple[int, list[int]]:
    """An edition of the daily list to olvaso1-3 only: sent, failed, queued; with their ids."""
    store = desk.publisher.store
    people = [
        Enrolment(f"olvaso{n}@example.hu", "", "", "", SubscriptionStatus.ACTIVE) for n in (1, 2, 3)
    ]
    store.enrol(people, "daily", now=NOW)
    ids = [store.subscriber_by_email(p.email).id for p in people]
    for sub in store.active_subscribers("daily"):
        if sub.id not in ids:
            store.unsubscribe(sub.id, "daily", channel=UnsubscribeChannel.PUBLISHER, now=NOW)
    edition, _ = store.create_edition(
        list_slug="daily",
        edition_date=NOW.date(),
        now=NOW,
        cutoff=NOW,
        subject="Napi",
        html="<p>x</p>",
        text="x",
        article_ids=[],
        slot_nonce="n",
    )
    store.queue_deliveries(edition, message_id=lambda sid: f"<{sid}@x>", now=NOW)
    claims = store.claim(edition, owner="t", limit=10, lease=timedelta(minutes=5), now=NOW)
    store.record(
        [
            Outcome(edition.id, ids[0], DeliveryState.SENT, "250 ok"),
            Outcome(edition.id, ids[1], DeliveryState.FAILED, "550 5.1.1 no such user"),
        ],
        owner="t",
        now=NOW,
    )
    store.release([c for c in claims if c.subscriber.id == ids[2]], owner="t", now=NOW)
    store.set_edition_status(edition.id, EditionStatus.SENDING)
    return edition.id, ids


@pytest.mark.parametrize(("method", "path"), NEW_URLS, ids=[f"{m} {p}" for m, p in NEW_URLS])
def test_every_new_desk_url_refuses_a_visitor_without_a_session(
    desk: Desk, method: str, path: str
) -> None:
    one_edition(desk)
    for cookie in ("", "forged", desk_cookie_of_another_install()):
        desk.client.cookies.clear()
        if cookie:
            desk.client.cookies.set(SESSION_COOKIE, cookie, path="/desk")
        response = desk.client.request(method, path, follow_redirects=False)
        if method == "GET":
            assert response.status_code == 303
            assert response.headers["location"] == f"/desk/sign-in?next={path}"
        else:
            assert response.status_code == 403
        assert "olvaso" not in response.text and "Napi" not in response.text


@pytest.mark.parametrize("path", POSTS)
def test_every_new_post_refuses_a_form_without_its_csrf_token(desk: Desk, path: str) -> None:
    edition_id, ids = one_edition(desk)
    desk.sign_in()
    path = path.replace("editions/1", f"editions/{edition_id}")
    path = path.replace("subscribers/1", f"subscribers/{ids[0]}")
    response = desk.client.post(path, data={"list": "daily"}, follow_redirects=False)
    assert response.status_code == 403
    counts = desk.publisher.store.delivery_counts(edition_id)
    assert counts == {"sent": 1, "failed": 1, "queued": 1}
    assert desk.publisher.store.edition_by_id(edition_id).status == EditionStatus.SENDING
    assert desk.publisher.store.subscription_status(ids[0], "daily") == SubscriptionStatus.ACTIVE


def test_the_live_json_and_the_buttons_change_the_edition(desk: Desk) -> None:
    edition_id, _ = one_edition(desk)
    desk.sign_in()
    page = desk.client.get(f"/desk/editions/{edition_id}")
    assert (
        page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    )
    live = desk.client.get(f"/desk/editions/{edition_id}/live.json").json()
    assert live["counts"]["sent"] == 1 and live["counts"]["failed"] == 1
    assert live["open"] == 1 and live["total"] == 3
    assert live["refusals"][0]["reply"] == "550 5.1.1 no such user"
    token = desk.csrf(f"/desk/editions/{edition_id}")
    store = desk.publisher.store

    def post(action: str) -> int:
        url = f"/desk/editions/{edition_id}/{action}"
        return desk.client.post(url, data={"csrf_token": token}, follow_redirects=False).status_code

    assert post("pause") == 303 and store.edition_by_id(edition_id).status == "paused"
    assert post("pause") == 303  # pausing twice is harmless
    assert post("resume") == 303 and store.edition_by_id(edition_id).status == "sending"
    assert post("resume") == 409  # not paused
    assert post("retry") == 303
    assert store.delivery_counts(edition_id) == {"sent": 1, "queued": 2}
    assert desk.client.get("/desk/editions/999999").status_code == 404
    history = desk.client.get("/desk/editions").text
    assert f'id="edition-{edition_id}"' in history and '<td data-count="sent">1</td>' in history


def test_an_editor_unsubscribes_and_resubscribes_a_reader(desk_on_each_backend: Desk) -> None:
    desk = desk_on_each_backend
    _, (_, reader, _) = one_edition(desk)
    me = f"/desk/subscribers/{reader}"
    desk.sign_in()
    found = desk.client.get("/desk/subscribers", params={"q": "OLVASO2"}).text
    assert f'href="{me}"' in found and "olvaso1@" not in found
    page = desk.client.get(me).text
    assert "550 5.1.1 no such user" in page and "Unsubscribe from daily" in page
    token = desk.csrf(me)
    store = desk.publisher.store
    form = {"csrf_token": token, "list": "daily"}
    done = desk.client.post(f"{me}/unsubscribe", data=form, follow_redirects=False)
    assert done.status_code == 303
    assert store.subscription_status(reader, "daily") == SubscriptionStatus.UNSUBSCRIBED
    assert "Resubscribe to daily" in desk.client.get(me).text
    again = desk.client.post(f"{me}/resubscribe", data=form, follow_redirects=False)
    assert again.status_code == 303
    assert store.subscription_status(reader, "daily") == SubscriptionStatus.ACTIVE
    other = {"csrf_token": token, "list": "weekly"}
    never = desk.client.post(f"{me}/resubscribe", data=other)
    assert never.status_code in (400, 409)
    assert store.subscription_status(reader, "weekly") is None
    assert desk.client.get("/desk/subscribers/424242").status_code == 404


def test_a_csv_upload_gives_the_clis_line_numbered_report(desk: Desk) -> None:
    desk.sign_in()
    token = desk.csrf("/desk/subscribers/import")
    data = (
        "email;name\n"
        "kovacs.anna.uj@example.hu;Kovács Anna\n"
        "not an address;Senki\n"
        "KOVACS.ANNA.UJ@example.hu;Anna again\n"
        "szabo.peter.uj@example.hu;Szabó Péter\n"
    ).encode()
    response = desk.client.post(
        "/desk/subscribers/import",
        data={"csrf_token": token, "list": "daily", "status": "active"},
        files={"file": ("readers.csv", data, "text/csv")},
    )
    assert response.status_code == 200
    report = response.text.split('<pre class="report" role="status">')[1].split("</pre>")[0]
    lines = report.splitlines()
    assert lines[0].startswith("readers.csv line 3: ")
    assert lines[1] == "readers.csv line 4: same address as line 2, merged"
    assert lines[-1] == (
        "readers.csv: 2 added, 1 updated, 0 unchanged, 0 suppressed kept, 1 rejected"
    )
    store = desk.publisher.store
    assert store.subscription_status(
        store.subscriber_by_email("szabo.peter.uj@example.hu").id, "daily"
    )


def test_an_upload_past_the_configured_limit_is_refused_before_it_is_read(desk: Desk) -> None:
    desk.sign_in()
    token = desk.csrf("/desk/subscribers/import")
    limit = desk.settings.desk.upload_bytes
    assert limit > desk.settings.web.max_body_bytes  # uploads get more than other forms
    big = b"email\n" + b"x@example.hu\n" * (limit // 13 + 1)
    response = desk.client.post(
        "/desk/subscribers/import",
        data={"csrf_token": token, "list": "daily", "status": "active"},
        files={"file": ("big.csv", big, "text/csv")},
    )
    assert response.status_code == 413
    fits = b"email\n" + b"aaaa.uj@example.hu\n" * 1400  # 26 KB: over max_body_bytes, under the cap
    ok = desk.client.post(
        "/desk/subscribers/import",
        data={"csrf_token": token, "list": "daily", "status": "active"},
        files={"file": ("fits.csv", fits, "text/csv")},
    )
    assert ok.status_code == 200 and "1 added" in ok.text
