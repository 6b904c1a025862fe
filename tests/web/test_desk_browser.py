"""The desk in a real headless Chromium: an editor signs in, sees today's drafts framed at
desktop and phone widths, and signs out; a screenshot goes to the test output folder."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from digest.mail.transport import free_port
from digest.operations.editors import add_editor
from digest.operations.publisher import Publisher
from digest.web import create_app
from tests.conftest import NOW
from tests.support.web import web_settings
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _need_chromium

EDITOR, PASSWORD = "editor@budapestpost.example", "correct horse battery staple"


@pytest.fixture
def desk_url(tmp_path: Path) -> Iterator[str]:
    """`digest web` under uvicorn on a seeded database with one editor."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = web_settings(tmp_path, free_port(), base)
    cheap = settings.desk.model_copy(update={"hash_memory_kib": 1024, "hash_passes": 1})
    settings = settings.model_copy(update={"desk": cheap})
    publisher = Publisher(settings)
    publisher.init(seed=True, now=NOW)
    add_editor(publisher.store, EDITOR, PASSWORD, settings=settings.desk, now=NOW)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, clock=lambda: NOW),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)  # uvicorn has no start event to wait on
    assert server.started, "uvicorn did not start"
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def page(tmp_path: Path, desk_url: str) -> Iterator[Any]:
    sync_api = _need_chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route(
                "**/*",
                lambda route: (
                    route.continue_() if route.request.url.startswith(desk_url) else route.abort()
                ),
            )
            yield context.new_page()
        finally:
            browser.close()


def test_an_editor_signs_in_sees_the_drafts_and_signs_out(
    page: Any, desk_url: str, tmp_path: Path
) -> None:
    page.goto(f"{desk_url}/desk")
    assert page.url == f"{desk_url}/desk/sign-in?next=/desk"
    page.get_by_label("Email address").fill(EDITOR)
    page.get_by_label("Password").fill("a wrong password entirely")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong address or password."
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{desk_url}/desk")
    assert page.get_by_role("heading", name="Today").is_visible()
    assert page.get_by_role("heading", name="Budapest Post Daily").is_visible()
    frame = page.frame_locator('iframe[title="Budapest Post Daily: HTML at 375 px"]')
    assert "Dear reader" in frame.locator("body").inner_text(timeout=10_000)
    assert (
        page.locator("section[aria-labelledby=list-daily] .facts").inner_text().count("Articles: 0")
        == 0
    )  # the seeded articles of the day are in the draft
    widths = page.eval_on_selector_all(
        "section[aria-labelledby=list-daily] iframe", "frames => frames.map(f => f.clientWidth)"
    )
    assert widths == [598, 373]  # 600 and 375 px inside a 1 px border
    page.screenshot(path=str(tmp_path / "desk-today.png"), full_page=False)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{desk_url}/desk/sign-in")
    page.goto(f"{desk_url}/desk")
    assert page.url.startswith(f"{desk_url}/desk/sign-in")
