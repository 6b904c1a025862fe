"""The desk in a real headless Chromium: an editor signs in, sees today's drafts framed at
desktop and phone widths, and signs out; an editor approves a held edition and the mail
reaches a real SMTP server. Screenshots go to the test output folder."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from digest.config import Settings
from digest.mail.transport import free_port
from digest.operations.editors import add_editor
from digest.operations.publisher import Publisher
from digest.service.scheduler import Runner
from digest.web import create_app
from tests.conftest import NOW, RecordingHandler
from tests.operations.test_approval import daily_mail, readers_subjects, requiring
from tests.support.web import web_settings
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _need_chromium

EDITOR, PASSWORD = "editor@budapestpost.example", "correct horse battery staple"


@contextmanager
def served(
    settings: Settings, port: int, *, clock: Callable[[], datetime] = lambda: NOW
) -> Iterator[str]:
    """`digest web` under uvicorn on `port`, its clock at NOW unless told."""
    base = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, clock=clock),
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


def desk_settings(tmp_path: Path, smtp_port: int, port: int) -> Settings:
    settings = web_settings(tmp_path, smtp_port, f"http://127.0.0.1:{port}")
    cheap = settings.desk.model_copy(update={"hash_memory_kib": 1024, "hash_passes": 1})
    return settings.model_copy(update={"desk": cheap})


def seeded_with_editor(settings: Settings) -> Publisher:
    publisher = Publisher(settings)
    publisher.init(seed=True, now=NOW)
    add_editor(publisher.store, EDITOR, PASSWORD, settings=settings.desk, now=NOW)
    return publisher


@pytest.fixture
def desk_url(tmp_path: Path) -> Iterator[str]:
    """`digest web` under uvicorn on a seeded database with one editor."""
    port = free_port()
    settings = desk_settings(tmp_path, free_port(), port)
    seeded_with_editor(settings)
    with served(settings, port) as base:
        yield base


@contextmanager
def chromium_page(desk_url: str) -> Iterator[Any]:
    """A page in headless Chromium that may reach the desk and nothing else."""
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


@pytest.fixture
def page(desk_url: str) -> Iterator[Any]:
    with chromium_page(desk_url) as opened:
        yield opened


def sign_in(page: Any, desk_url: str) -> None:
    page.goto(f"{desk_url}/desk")
    page.get_by_label("Email address").fill(EDITOR)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{desk_url}/desk")


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


def test_an_editor_approves_the_held_edition_and_the_mail_arrives(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int]
) -> None:
    handler, smtp_port = smtp_server
    port = free_port()
    settings = requiring(desk_settings(tmp_path, smtp_port, port))
    publisher = seeded_with_editor(settings)
    runner = Runner(publisher, clock=lambda: NOW)
    runner.sweep()  # 07:00 in Budapest: the daily edition is made and held
    edition = publisher.store.latest_edition("daily")
    assert edition is not None and daily_mail(handler) == []
    with served(settings, port) as desk_url, chromium_page(desk_url) as page:
        sign_in(page, desk_url)
        daily = page.locator("section[aria-labelledby=list-daily]")
        assert daily.locator(".approval").inner_text() == "State: waiting"
        daily.get_by_role("button", name="Approve Budapest Post Daily").click()
        page.wait_for_url(f"{desk_url}/desk")
        state = daily.locator(".approval").inner_text()
        assert state == f"State: approved by {EDITOR} at 07:00 CET"
        assert daily.get_by_role("button", name="Approve Budapest Post Daily").count() == 0
        page.screenshot(path=str(tmp_path / "desk-approved.png"), full_page=False)
    runner.deliver_due()  # the sweep of `digest run`
    mail = daily_mail(handler)
    assert len(mail) == len(publisher.store.active_subscribers("daily")) > 0
    assert {str(message["Subject"]) for message in mail} == readers_subjects(publisher, edition)
