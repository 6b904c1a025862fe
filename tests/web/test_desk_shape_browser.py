"""The issue's "done when", in a real headless Chromium against a real SMTP server: an editor
made with `digest editors add` signs in, excludes one article of today's daily draft, the
scheduled run makes the shaped edition and holds it, the editor approves it, and the delivered
mail (both parts) no longer holds that article but still holds the others."""

from __future__ import annotations

import html
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import cast

from digest.mail.transport import free_port
from digest.operations.publisher import Publisher
from digest.service.scheduler import Runner
from tests.conftest import NOW, RecordingHandler
from tests.operations.test_approval import requiring
from tests.support.cli import run
from tests.web.test_desk_browser import EDITOR, PASSWORD, chromium_page, desk_settings, served
from tests.web.test_desk_browser import sign_in as browser_sign_in

EXCLUDE = re.compile(r"^Exclude “(.*)”$")


def parts(handler: RecordingHandler) -> list[tuple[str, str]]:
    """The (HTML, text) parts of every daily message the server received, the text's lines
    joined."""
    found: list[tuple[str, str]] = []
    for received in handler.messages:
        message = cast(EmailMessage, message_from_bytes(received.data, policy=policy.default))
        if "<daily." not in str(message["List-Id"]):
            continue
        bodies = [message.get_body(preferencelist=(kind,)) for kind in ("html", "plain")]
        assert all(bodies), "a part is missing"
        page_html, text = (cast(EmailMessage, body).get_content() for body in bodies)
        found.append((page_html, " ".join(text.split())))  # the text part wraps long titles
    return found


def test_an_editor_excludes_an_article_approves_and_the_mail_lacks_it(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int]
) -> None:
    handler, smtp_port = smtp_server
    port = free_port()
    settings = requiring(desk_settings(tmp_path, smtp_port, port))
    publisher = Publisher(settings)
    publisher.init(seed=True, now=NOW)
    added = run(
        "editors", "add", EDITOR, "--password-stdin", stdin=PASSWORD + "\n",
        env={
            "DIGEST_DATABASE_URL": settings.database_url,
            "DIGEST_DESK__HASH_MEMORY_KIB": "1024",
            "DIGEST_DESK__HASH_PASSES": "1",
        },
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    runner = Runner(publisher, clock=lambda: NOW)
    with served(settings, port) as desk_url, chromium_page(desk_url) as page:
        browser_sign_in(page, desk_url)
        page.set_viewport_size({"width": 375, "height": 800})  # the controls fit a phone
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.set_viewport_size({"width": 1280, "height": 900})
        daily = page.locator("section[aria-labelledby=list-daily]")
        buttons = daily.get_by_role("button", name=re.compile("^Exclude "))
        assert buttons.count() >= 3
        label = buttons.nth(buttons.count() - 1).get_attribute("aria-label") or ""
        found = EXCLUDE.match(label)
        assert found, label
        title = found.group(1)
        buttons.nth(buttons.count() - 1).click()
        page.wait_for_url(f"{desk_url}/desk#list-daily")
        assert daily.locator(".excluded").inner_text().startswith(title)
        frame = daily.frame_locator('iframe[title="Budapest Post Daily: HTML at 600 px"]')
        assert "Dear reader" in frame.locator("body").inner_text(timeout=10_000)
        assert title not in frame.locator("body").inner_text()
        assert title not in daily.locator(".text pre").inner_text()
        page.screenshot(path=str(tmp_path / "desk-shaped.png"), full_page=True)

        runner.sweep()  # 07:00 in Budapest: the scheduled run makes the shaped edition, held
        edition = publisher.store.latest_edition("daily")
        assert edition is not None and parts(handler) == []
        page.reload()
        assert daily.locator(".approval").inner_text() == "State: waiting"
        assert daily.get_by_role("button", name=re.compile("^Exclude ")).count() == 0
        daily.get_by_role("button", name="Approve Budapest Post Daily").click()
        page.wait_for_url(f"{desk_url}/desk")
    runner.deliver_due()  # the sweep of `digest run`
    mail = parts(handler)
    assert len(mail) == len(publisher.store.active_subscribers("daily")) > 0
    kept = publisher.store.articles_by_id(edition.article_ids)
    assert kept and title not in {article.title for article in kept}
    for page_html, text in mail:
        assert html.escape(title, quote=False) not in page_html and title not in text
    every_html = "".join(page_html for page_html, _ in mail)
    every_text = "".join(text for _, text in mail)
    for article in kept:  # every other article reached readers, in both parts
        assert html.escape(article.title, quote=False) in every_html, article.title
        assert article.title in every_text, article.title
