"""The picture an article page names for itself in its <head>: pure, given the page's bytes.

Open Graph first (`og:image`, or its `og:image:secure_url`; `og:image:width`, `:height` and
`:alt` describe the og:image before them), then `twitter:image`. The same rules as a feed's own
images: no tracking pixel, no emoji, only an absolute http(s) URL, a relative one resolved
against the page's address (or its `<base href>`).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin

from digest.intake.articles import one_line, web_url
from digest.intake.markup import is_decoration

_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._-]+)""", re.IGNORECASE)
_TWITTER = ("twitter:image", "twitter:image:src")
_LONGEST_URL = 2048  # a longer "image URL" is some page's mistake, not a picture to link


@dataclass(slots=True)
class _Named:
    """One og:image and what the properties after it say about it."""

    url: str = ""
    secure_url: str = ""
    width: str | None = None
    height: str | None = None
    alt: str = ""


class _Head(HTMLParser):
    """The <meta> images of a page's head, in order; it stops looking where the head ends."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open_graph: list[_Named] = []
        self.twitter: list[str] = []
        self.base = ""
        self.ended = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.ended:
            return
        values = {name: value or "" for name, value in attrs}
        if tag == "body":
            self.ended = True
        elif tag == "base" and not self.base:
            self.base = values.get("href", "")
        elif tag == "meta":
            self._meta((values.get("property") or values.get("name") or "").strip().lower(), values)

    def handle_endtag(self, tag: str) -> None:
        self.ended = self.ended or tag == "head"

    def _meta(self, name: str, values: dict[str, str]) -> None:
        content = values.get("content", "").strip()
        if name in ("og:image", "og:image:url"):
            self.open_graph.append(_Named(url=content))
        elif name in _TWITTER:
            self.twitter.append(content)
        elif name.startswith("og:image:"):
            if not self.open_graph:  # a secure_url or size before any og:image: its own image
                self.open_graph.append(_Named())
            named = self.open_graph[-1]
            field = name.removeprefix("og:image:")
            if field == "secure_url":
                named.secure_url = content
            elif field in ("width", "height", "alt"):
                setattr(named, field, content)


def page_image(head: bytes, *, url: str, content_type: str = "") -> tuple[str, str] | None:
    """The (URL, alt text) of the image the page's head names, or None when it names none that
    may be an article's picture. `url` is the page's own address, after any redirect."""
    scan = _Head()
    try:
        text = head.decode(_charset(head, content_type), errors="replace")
    except LookupError:  # a declared codec that is no text encoding, such as base64
        text = head.decode("utf-8", errors="replace")
    scan.feed(text)
    candidates = [
        (candidate, named.alt)
        for named in scan.open_graph
        if not _tiny(named)
        for candidate in (named.secure_url, named.url)
    ]
    candidates += [(twitter, "") for twitter in scan.twitter]
    try:
        base = web_url(urljoin(url, scan.base.strip())) or url
    except ValueError:  # a malformed IPv6 host in <base href>: the page's own address
        base = url
    for candidate, alt in candidates:
        try:
            found = web_url(urljoin(base, candidate)) if candidate else None
            found = found if found and len(found) <= _LONGEST_URL else None
        except ValueError:  # a malformed IPv6 host: not an image to use
            continue
        if found and not is_decoration(found):
            return found, one_line(alt, limit=300)
    return None


def _tiny(named: _Named) -> bool:
    return is_decoration("", width=named.width, height=named.height)


def _charset(head: bytes, content_type: str) -> str:
    """The page's encoding, from its Content-Type, else its <meta charset>, else UTF-8."""
    declared = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", content_type, re.IGNORECASE)
    found = declared.group(1) if declared else ""
    if not found and (meta := _CHARSET.search(head[:4096])):
        found = meta.group(1).decode("ascii")
    try:
        return codecs.lookup(found).name if found else "utf-8"
    except LookupError:
        return "utf-8"
