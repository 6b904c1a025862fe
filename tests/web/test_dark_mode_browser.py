"""The digest as sent, in a real headless Chromium with the reader's colour scheme emulated:
dark page and card with light text in dark mode, the light design in light mode, and every
visible piece of text readable (WCAG 2.2 SC 1.4.3: contrast at least 4.5:1) in both.

The computed colours are the browser's own; a screenshot of each goes to the test's folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from lxml import html as lxml_html

from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _need_chromium, placeholder_png

MINIMUM_CONTRAST = 4.5
# Every visible element with text of its own: its colour and the first opaque background
# behind it (its own or an ancestor's), as the browser computed them.
TEXT_COLOURS = """() => {
  const opaque = (colour) => !/^rgba\\(.*,\\s*0\\)$/.test(colour) && colour !== "transparent";
  const backdrop = (element) => {
    for (let at = element; at; at = at.parentElement) {
      const colour = getComputedStyle(at).backgroundColor;
      if (opaque(colour)) return colour;
    }
    return null;
  };
  return [...document.body.querySelectorAll("*")]
    .filter((element) => [...element.childNodes].some(
      (node) => node.nodeType === Node.TEXT_NODE && node.textContent.trim()))
    .filter((element) => element.checkVisibility({opacityProperty: true, visibilityProperty: true}))
    .map((element) => ({
      cls: element.className,
      text: element.textContent.trim().slice(0, 40),
      colour: getComputedStyle(element).color,
      background: backdrop(element),
    }));
}"""
# Outlook.com's marks, here on the root so that every element is inside them.
OUTLOOK_DARK = """() => {
  document.documentElement.setAttribute("data-ogsc", "");
  document.documentElement.setAttribute("data-ogsb", "");
}"""
BACKGROUND_OF = "selector => getComputedStyle(document.querySelector(selector)).backgroundColor"
RGB = re.compile(r"rgba?\((\d+), (\d+), (\d+)(?:, ([\d.]+))?\)")


def luminance(colour: str) -> float:
    """WCAG relative luminance of a computed `rgb(...)` colour."""
    found = RGB.fullmatch(colour)
    assert found, colour
    assert found.group(4) in (None, "1"), f"not opaque: {colour}"

    def linear(channel: str) -> float:
        value = int(channel) / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(found.group(i)) for i in (1, 2, 3))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(first: str, second: str) -> float:
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [(("rgb(0, 0, 0)", "rgb(255, 255, 255)"), 21.0), (("rgb(89, 89, 89)", "rgb(89, 89, 89)"), 1.0)],
    ids=["black-on-white", "same-colour"],
)
def test_contrast_is_the_wcag_ratio(inputs: tuple[str, str], expected: float) -> None:
    assert contrast(*inputs) == pytest.approx(expected)


@pytest.fixture(scope="module")
def digest_html(daily_digest_as_sent: bytes) -> str:
    part = BytesParser(policy=policy.default).parsebytes(daily_digest_as_sent).get_body(("html",))
    assert part is not None
    return str(part.get_content())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = _need_chromium()
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def shown(browser: Any, html: str, scheme: str) -> tuple[Any, Any]:
    """A page showing `html` to a reader who prefers `scheme`; images are a placeholder and
    nothing else is fetched."""
    context = browser.new_context(viewport={"width": 800, "height": 1000}, color_scheme=scheme)
    image = placeholder_png()
    context.route(
        "**/*",
        lambda route: (
            route.fulfill(status=200, content_type="image/png", body=image)
            if route.request.resource_type == "image"
            else route.abort()
        ),
    )
    page = context.new_page()
    page.set_content(html, wait_until="load")
    return context, page


# A reader: the colour scheme the browser reports, and whether Outlook.com's marks are set.
READERS = {
    "light": ("light", False),
    "dark": ("dark", False),
    # Outlook.com in dark mode does not match prefers-color-scheme: it marks what it recolours.
    "outlook-com-dark": ("light", True),
}


@pytest.mark.parametrize("reader", list(READERS), ids=list(READERS))
def test_the_digest_follows_the_colour_scheme_and_stays_readable(
    browser: Any, digest_html: str, reader: str, tmp_path: Path
) -> None:
    scheme, outlook_marks = READERS[reader]
    dark = reader != "light"
    context, page = shown(browser, digest_html, scheme)
    try:
        assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") == (
            scheme == "dark"
        )
        if outlook_marks:
            page.evaluate(OUTLOOK_DARK)
        texts = page.evaluate(TEXT_COLOURS)
        page_background = luminance(page.evaluate(BACKGROUND_OF, ".body"))
        card = luminance(page.evaluate(BACKGROUND_OF, ".card"))
        page.screenshot(path=str(tmp_path / "digest.png"), full_page=True)
    finally:
        context.close()
    summaries = [luminance(t["colour"]) for t in texts if "summary" in t["cls"].split()]
    # Every card's summary (the articles after the lead, less those in brief) was measured.
    assert len(summaries) == len(lxml_html.fromstring(digest_html).find_class("summary")) >= 5
    if dark:
        assert page_background < 0.02 and card < 0.02  # near black: #121212, #1e1e1e
        assert min(summaries) > 0.8  # near white: #f0f0f0
    else:
        assert page_background > 0.8 and card == 1.0  # #f0efeb, #ffffff
        assert max(summaries) < 0.02  # near black: #1a1a1a
    assert len(texts) > 50
    unreadable = [
        (t["cls"], t["text"], t["colour"], t["background"], round(ratio, 2))
        for t in texts
        if (ratio := contrast(t["colour"], t["background"])) < MINIMUM_CONTRAST
    ]
    assert not unreadable, unreadable
