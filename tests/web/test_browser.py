"""A reader's whole journey in a real headless Chromium, against the real servers:
sign up -> confirmation mail -> confirm -> the next digest -> unsubscribe from its link ->
not in the edition after. Screenshots of the digest at 600 and 375 px go to the test output
folder (tmp_path, or $DIGEST_TEST_OUTPUT to keep them)."""

from __future__ import annotations

import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import uvicorn
from lxml import html as lxml_html

from digest.mail.capture import Captured, CaptureServer
from digest.mail.transport import free_port
from digest.models import Article
from digest.operations.publisher import Publisher
from digest.web import create_app
from tests.conftest import NOW
from tests.support.web import link_in, parse, status_of, web_settings

CHROMIUM = Path("/usr/bin/chromium")
# Flags that keep Chromium off the network and away from any profile but a fresh one.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
T = TypeVar("T")
READER = "browser.reader@example.com"
OTHER = "odon.gyori@example.hu"  # a seeded daily reader, to show the later edition went out


def _need_chromium() -> Any:
    """The Playwright module; skipped without Chromium, but a failure when CI=true."""
    reason = ""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        from playwright import sync_api
    except ImportError:
        reason = reason or "the playwright package is not installed (pip install -e '.[test]')"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)
    return sync_api


def placeholder_png(width: int = 600, height: int = 338) -> bytes:
    """A grey PNG standing in for the site's article images (the browser never goes out)."""
    row = b"\x00" + b"\xc8\xc8\xc8" * width

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


class Mailbox:
    """What the capture server received, by recipient."""

    def __init__(self) -> None:
        self.items: list[Captured] = []
        self.lock = threading.Lock()

    def add(self, item: Captured) -> None:
        with self.lock:
            self.items.append(item)

    def for_address(self, address: str) -> list[EmailMessage]:
        with self.lock:
            found = [i for i in self.items if address in i.recipients]
        return [parse(i.path.read_bytes()) for i in found]

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.for_address(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no mail for {address} within {timeout}s")


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    chosen = Path(os.environ.get("DIGEST_TEST_OUTPUT") or tmp_path / "test-output")
    chosen.mkdir(parents=True, exist_ok=True)
    return chosen


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Publisher, str, Mailbox]]:
    """The capture SMTP server and `digest web` under uvicorn, each on a free port."""
    mailbox = Mailbox()
    smtp_port, web_port = free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    settings = web_settings(tmp_path, smtp_port, base)
    publisher = Publisher(settings)
    publisher.init(seed=True, now=NOW)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=web_port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    with CaptureServer(tmp_path / "mail", host="127.0.0.1", port=smtp_port, on_message=mailbox.add):
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started, "uvicorn did not start"
        try:
            yield publisher, base, mailbox
        finally:
            server.should_exit = True
            thread.join(timeout=10)


@pytest.fixture
def browser(tmp_path: Path, served: tuple[Publisher, str, Mailbox]) -> Iterator[Any]:
    """A fresh Chromium profile whose only reachable host is the web server under test."""
    sync_api = _need_chromium()
    allowed = urlsplit(served[1]).netloc
    image = placeholder_png()

    def route(request_route: Any) -> None:
        request = request_route.request
        if urlsplit(request.url).netloc == allowed:
            request_route.continue_()
        elif request.resource_type == "image":
            request_route.fulfill(status=200, content_type="image/png", body=image)
        else:
            request_route.abort()

    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 600, "height": 900},
        )
        context.route("**/*", route)
        try:
            yield context
        finally:
            context.close()


def test_sign_up_confirm_receive_unsubscribe(
    served: tuple[Publisher, str, Mailbox], browser: Any, out_dir: Path
) -> None:
    publisher, base, mailbox = served
    page = browser.new_page()

    # Sign up: the form, as a person fills it in (on a phone-sized screen).
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"{base}/subscribe")
    page.fill("#email", READER)
    page.fill("#name", "Böngésző Olvasó")
    page.get_by_label("Budapest Post Daily").check()
    page.screenshot(path=str(out_dir / "subscribe-375.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_text("Check your inbox").first.wait_for()
    assert status_of(publisher.store, READER, "daily") == "pending"

    # The confirmation mail: its link opens a page whose button confirms.
    (confirmation,) = mailbox.wait_for(READER)
    page.goto(link_in(confirmation, rf"{base}/confirm/\S+"))
    assert status_of(publisher.store, READER, "daily") == "pending"
    page.get_by_role("button", name="Confirm").click()
    page.get_by_text("You are subscribed").wait_for()
    assert status_of(publisher.store, READER, "daily") == "active"

    # The next digest arrives.
    within(60, lambda: publisher.send("daily", now=NOW))
    digest = mailbox.wait_for(READER, count=2)[1]
    assert "Dear Böngésző Olvasó," in _html(digest)
    check_layout(browser, _html(digest), out_dir)

    # Unsubscribe through the link in the digest's footer: GET shows a button, POST acts.
    link = _footer_unsubscribe(digest)
    assert link.startswith(f"{base}/u/daily/") and link in digest["List-Unsubscribe"]
    page.goto(link)
    page.screenshot(path=str(out_dir / "unsubscribe-375.png"), full_page=True)
    assert status_of(publisher.store, READER, "daily") == "active"
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Unsubscribe").click()
    assert answer.value.status == 200 and "location" not in answer.value.headers
    page.get_by_text("You are unsubscribed").wait_for()
    assert status_of(publisher.store, READER, "daily") == "unsubscribed"

    # A later edition goes to the others, not to the reader who left.
    later = NOW + timedelta(days=1)
    publisher.store.save_articles([_fresh_article(later)], now=later, update_existing=False)
    result = within(60, lambda: publisher.send("daily", now=later))
    assert result.created and result.report.counts.get("sent", 0) > 0
    assert len(mailbox.wait_for(OTHER, count=2)) == 2
    assert len(mailbox.for_address(READER)) == 2


def within(seconds: float, work: Callable[[], T]) -> T:
    """`work()`, or a failure after `seconds`: a stuck send must not hang the whole run."""
    outcome: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if errors:
        raise errors[0]
    if not outcome:
        pytest.fail(f"still running after {seconds}s")
    return outcome[0]


def check_layout(browser: Any, document: str, out_dir: Path) -> None:
    """Screenshots at 600 and 375 px, and no horizontal scrolling on the phone width."""
    page = browser.new_page()
    for width in (600, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.set_content(document, wait_until="load")
        shot = out_dir / f"digest-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 1000
        scroll, inner, client = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth,"
            " document.documentElement.clientWidth]"
        )
        assert scroll <= inner, f"horizontal scrolling at {width}px: {scroll} > {inner}"
        assert scroll <= client, f"content wider than the viewport at {width}px"
    page.close()


def _html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def _footer_unsubscribe(message: EmailMessage) -> str:
    tree = lxml_html.fromstring(_html(message))
    (href,) = tree.xpath("//a[normalize-space(.)='Unsubscribe']/@href")
    return str(href)


def _fresh_article(when: Any) -> Article:
    return Article(
        id="browser-test-fresh",
        title="Danube bridges reopen after the spring floods",
        summary="Traffic returns to the Chain Bridge and Margaret Bridge.",
        section="Hungary",
        url="https://budapestpost.example/hungary/bridges-reopen",
        published_at=when - timedelta(hours=2),
    )
