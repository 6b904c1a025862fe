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
            src = values.get("src") or ""
            size = {"width": values.get("width"), "height": values.get("height")}
            if not is_decoration(src, **size, css_class=values.get("class")):
                self.image = (src, values.get("alt") or "")
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _BREAKS:
            self.parts.append(" ")


def is_decoration(
    src: str, *, width: object = None, height: object = None, css_class: str | None = None
) -> bool:
    """A tracking pixel (1 wide or high, a stats path) or an emoji: never the story's picture.

    For an <img>, and for a feed's media:content, media:thumbnail or enclosure alike.
    """
    src = src.lower()
    tiny = "1" in [str(side or "").strip().removesuffix("px") for side in (width, height)]
    emoji = "emoji" in src or "smiley" in (css_class or "")
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
