"""Dark mode in the digest as sent: the colour-scheme declarations survive CSS inlining, and
Outlook.com's [data-ogsc]/[data-ogsb] rules give the same dark colours as prefers-color-scheme.

(How a browser shows it, in both schemes, is tests/web/test_dark_mode_browser.py.)
"""

from __future__ import annotations

import logging
from email import policy
from email.parser import BytesParser

import cssutils
import pytest
from lxml import html as lxml_html

DARK_MEDIA = "(prefers-color-scheme: dark)"
# Outlook.com marks what it recolours: data-ogsc for text, data-ogsb for backgrounds.
OUTLOOK_TEXT, OUTLOOK_BACKGROUND = "[data-ogsc] ", "[data-ogsb] "

Declarations = dict[tuple[str, str], str]


@pytest.fixture(scope="module")
def document(daily_digest_as_sent: bytes) -> lxml_html.HtmlElement:
    message = BytesParser(policy=policy.default).parsebytes(daily_digest_as_sent)
    part = message.get_body(("html",))
    assert part is not None
    return lxml_html.document_fromstring(part.get_content())


@pytest.fixture(scope="module")
def sheets(document: lxml_html.HtmlElement) -> list[cssutils.css.CSSStyleSheet]:
    """Every <style> block of the sent HTML, parsed."""
    cssutils.log.setLevel(logging.CRITICAL)  # it warns about mso-* and other mail properties
    return [cssutils.parseString(style.text or "") for style in document.iter("style")]


def declarations(rules: object) -> Declarations:
    """(selector, property) -> value for the style rules among `rules`, one per selector."""
    found: Declarations = {}
    for rule in rules:  # type: ignore[attr-defined]
        if rule.type != rule.STYLE_RULE:
            continue
        for selector in rule.selectorList:
            for prop in rule.style:
                found[(selector.selectorText, prop.name)] = f"{prop.value} !{prop.priority}"
    return found


def dark_media_rules(sheets: list[cssutils.css.CSSStyleSheet]) -> Declarations:
    found: Declarations = {}
    for sheet in sheets:
        for rule in sheet:
            if rule.type == rule.MEDIA_RULE and rule.media.mediaText == DARK_MEDIA:
                found.update(declarations(rule.cssRules))
    return found


def top_level_rules(sheets: list[cssutils.css.CSSStyleSheet]) -> Declarations:
    found: Declarations = {}
    for sheet in sheets:
        found.update(declarations(sheet))
    return found


def test_the_meta_tags_declare_both_schemes(document: lxml_html.HtmlElement) -> None:
    for name in ("color-scheme", "supported-color-schemes"):
        (meta,) = document.xpath(f"/html/head/meta[@name='{name}']")
        assert meta.get("content") == "light dark", name


def test_root_declares_both_schemes_after_inlining(
    sheets: list[cssutils.css.CSSStyleSheet],
) -> None:
    rules = top_level_rules(sheets)
    assert rules[(":root", "color-scheme")].startswith("light dark ")


def test_the_dark_media_block_is_kept_in_a_style_block(
    sheets: list[cssutils.css.CSSStyleSheet],
) -> None:
    dark = dark_media_rules(sheets)
    # The page, the card and body text all change: the browser test checks what that looks like.
    for selector, prop in [
        (".body", "background-color"),
        (".card", "background-color"),
        (".summary", "color"),
        (".footer-text", "color"),
    ]:
        assert dark[(selector, prop)].endswith("!important"), (selector, prop)


def test_outlook_com_gets_the_same_dark_colours(
    sheets: list[cssutils.css.CSSStyleSheet],
) -> None:
    dark = dark_media_rules(sheets)
    outlook: Declarations = {}
    for (selector, prop), value in top_level_rules(sheets).items():
        for prefix in (OUTLOOK_TEXT, OUTLOOK_BACKGROUND):
            if selector.startswith(prefix):
                # Backgrounds under data-ogsb, text and borders under data-ogsc.
                assert (prop == "background-color") == (prefix == OUTLOOK_BACKGROUND), selector
                outlook[(selector.removeprefix(prefix), prop)] = value
    assert outlook == dark


def test_no_dark_colour_was_inlined(document: lxml_html.HtmlElement) -> None:
    # premailer must not have written the [data-ogsc] colours into the light-mode styles.
    card = document.find_class("card")[0]
    assert "#fff" in card.get("style", "")
    for summary in document.find_class("summary"):
        assert "#1a1a1a" in summary.get("style", "")
