"""Feed markup made safe and plain: an HTML allowlist (nh3), its text, its first real image."""

from __future__ import annotations

from html.parser import HTMLParser

import nh3

# What a summary may keep of its markup; other tags go, and _DROPPED ones with their contents.
SUMMARY_TAGS = frozenset({"a", "b", "blockquote", "br", "em", "i", "li", "ol", "p", "strong", "ul"})
# Elements whose contents are code or fallback, never the story's text.
_DROPPED = frozenset({"iframe", "math", "noscript", "object", "script", "style", "svg", "template"})
# Where feeds' counting pixels live (Feedburner, WordPress stats).
_TRACKING_PATHS = ("feeds.feedburner.com/~r/", "stats.wordpress.com", "pixel.wp.com", "/~ff/")
_BREAKS = frozenset({"blockquote", "br", "li", "ol", "p", "ul"})


class _Scan(HTMLParser):
    """The text of markup, with a space where a block ends, and its first <img> (src, alt)."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.image: tuple[str, str] | None = None
        self.feed(markup)
        self.close()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img" and self.image is None:
            values = dict(attrs)
            if not _is_decoration(values):
                self.image = (values.get("src") or "", values.get("alt") or "")
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _BREAKS:
            self.parts.append(" ")


def _is_decoration(attrs: dict[str, str | None]) -> bool:
    """A tracking pixel (1x1, a stats path) or an emoji: never the story's picture."""
    src = (attrs.get("src") or "").lower()
    tiny = "1" in ((attrs.get("width") or "").strip(), (attrs.get("height") or "").strip())
    emoji = "emoji" in src or "smiley" in (attrs.get("class") or "")
    return tiny or emoji or any(path in src for path in _TRACKING_PATHS)


def clean_html(markup: str) -> str:
    """Markup cut down to the summary allowlist, with only http(s) links."""
    return nh3.clean(
        markup,
        tags=set(SUMMARY_TAGS),
        clean_content_tags=set(_DROPPED),
        attributes={"a": {"href"}},
        url_schemes={"http", "https"},
    )


def html_text(markup: str) -> str:
    """The plain text of (possibly hostile) markup: tags stripped, entities decoded."""
    return "".join(_Scan(clean_html(markup)).parts)


def first_image(markup: str) -> tuple[str, str] | None:
    """The (src, alt) of the markup's first <img> that is no tracking pixel or emoji."""
    return _Scan(markup).image
