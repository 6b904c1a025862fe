"""The desk's live page in a real headless Chromium: an editor watches a 2,000-subscriber
send go through a real SMTP server; the counts rise without a reload and the history page
shows the numbers afterwards."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from digest.mail.transport import free_port
from digest.models import SubscriptionStatus
from digest.store import Enrolment
from tests.conftest import NOW, RecordingHandler
from tests.web.test_desk_browser import (
    chromium_page,
    desk_settings,
    seeded_with_editor,
    served,
    sign_in,
)

READERS = 2000
# Slow enough that a one-second poll sees the send under way (about eight seconds).
RATE = 250.0

# Keeps every value the sent counter showed, and a mark that a reload would wipe.
WATCH_COUNTER = """() => {
  window.stillTheSamePage = true;
  window.sentSeen = [];
  const cell = document.querySelector('#live [data-count="sent"]');
  new MutationObserver(() => window.sentSeen.push(cell.textContent))
    .observe(cell, { childList: true, characterData: true, subtree: true });
}"""


def test_an_editor_watches_a_2000_subscriber_send_complete(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int]
) -> None:
    handler, smtp_port = smtp_server
    port = free_port()
    settings = desk_settings(tmp_path, smtp_port, port)
    paced = settings.delivery.model_copy(update={"rate_per_second": RATE})
    settings = settings.model_copy(update={"delivery": paced})
    publisher = seeded_with_editor(settings)
    store = publisher.store
    have = len(store.active_subscribers("daily"))
    store.enrol(
        [
            Enrolment(f"olvaso{n:04d}@example.hu", "", "", "", SubscriptionStatus.ACTIVE)
            for n in range(READERS - have)
        ],
        "daily",
        now=NOW,
    )
    queued = publisher.send("daily", now=NOW, deliver=False)
    edition = queued.edition
    assert edition is not None and queued.queued == READERS
    began = time.monotonic()

    def clock() -> datetime:
        return NOW + timedelta(seconds=time.monotonic() - began)

    with served(settings, port, clock=clock) as desk_url, chromium_page(desk_url) as page:
        sign_in(page, desk_url)
        page.goto(f"{desk_url}/desk/editions/{edition.id}")
        live = page.locator("#live")
        assert live.locator('[data-count="queued"]').inner_text() == str(READERS)
        assert live.locator('[data-count="sent"]').inner_text() == "0"
        page.evaluate(WATCH_COUNTER)
        sending = threading.Thread(
            target=lambda: publisher.deliver(edition, now=clock()), daemon=True
        )
        sending.start()
        page.wait_for_function(
            f"""() => document.querySelector('#live [data-count="sent"]').textContent
                === "{READERS}" """,
            timeout=120_000,
        )
        sending.join(timeout=60)
        assert not sending.is_alive()
        seen = [int(value) for value in page.evaluate("window.sentSeen")]
        assert page.evaluate("window.stillTheSamePage") is True  # no reload
        assert any(0 < value < READERS for value in seen), seen  # it rose while sending
        assert seen == sorted(seen)
        assert live.locator('[data-count="queued"]').inner_text() == "0"
        page.wait_for_function(
            """() => document.querySelector('#live [data-field="status"]').textContent
                === "done" """
        )
        page.screenshot(path=str(tmp_path / "desk-live.png"), full_page=True)
        page.get_by_role("link", name="Editions").click()
        page.wait_for_url(f"{desk_url}/desk/editions")
        row = page.locator(f"#edition-{edition.id}")
        assert row.locator('[data-count="sent"]').inner_text() == str(READERS)
        assert row.locator('[data-count="failed"]').inner_text() == "0"
        page.set_viewport_size({"width": 375, "height": 800})
        page.screenshot(path=str(tmp_path / "desk-history-375.png"), full_page=True)
    assert len(handler.messages) == READERS
