"""Feed bodies (RSS 2.0, Atom 1.0, JSON Feed 1.1) made into clean articles: pure, given `now`.

An item is known by its guid (Atom and JSON Feed: id), else by its canonical link. Its article id
is the feed's name and a short hash of that key: stable across polls, safe anywhere an id goes,
and never shared by two feeds. Text passes an HTML allowlist (nh3) before it becomes plain text,
so script and style contents never leak into a summary; only http(s) links and images survive.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import re
import time
import xml.sax
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit
from xml.parsers.expat import errors as expat_errors

import feedparser  # type: ignore[import-untyped]

from digest.config import FeedRules
from digest.errors import FeedError, InvalidInputError
from digest.intake.articles import SUMMARY_LIMIT, article_from_record, one_line, web_url
from digest.intake.markup import first_image, html_text, is_decoration
from digest.models import Article

_EMAIL_NAME = re.compile(r"\S+@\S+\s+\((.+)\)")
_PREFIX = re.compile(rb"</?([A-Za-z_][\w.-]*):[A-Za-z_]")
_ROOT = re.compile(rb"<(?:rss|feed|rdf:RDF)\b")
_KNOWN_NAMESPACES = {
    b"itunes": b"http://www.itunes.com/dtds/podcast-1.0.dtd",
    b"media": b"http://search.yahoo.com/mrss/",
    b"dc": b"http://purl.org/dc/elements/1.1/",
    b"content": b"http://purl.org/rss/1.0/modules/content/",
}
_MAX_DIGITS = 4000  # under Python's own 4,300-digit limit on int(str)


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One usable item: its article, and the identity key it is stored under."""

    key: str
    article: Article
    own_image: bool  # its image is its own enclosure or media image, not one of its text


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A feed's usable items, and a line for each item skipped or repair made."""

    items: tuple[FeedItem, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Raw:
    """One item as its format gives it: untrusted text, before any cleaning."""

    guid: str = ""
    link: str = ""
    title: str = ""
    title_is_html: bool = True  # Atom type="text": a literal <b> is text
    summary: str = ""
    summary_is_html: bool = True
    markup: str = ""  # the item's own HTML, searched for a first <img>
    published: datetime | None = None
    updated: datetime | None = None
    categories: tuple[str, ...] = ()
    author: str = ""
    images: tuple[str, ...] = ()
    fault: str = ""  # why the item cannot be used, found while reading it


def canonical_link(url: str) -> str:
    """The link as an identity: scheme and host lower-cased, fragment dropped."""
    parts = urlsplit(url.strip())
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, "")
    )


def parse_feed(
    body: bytes, *, rules: FeedRules, now: datetime, location: str = "", content_type: str = ""
) -> ParsedFeed:
    """The articles in one feed body; FeedError, naming the feed, when it is no feed at all.

    Items that cannot be used (no identity, no http(s) link, a repeated id) are skipped with a
    warning, so one bad item does not cost the feed's other news.
    """
    label = f"feed {rules.name!r}" + (f" ({location})" if location else "")
    warnings: list[str] = []
    if body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        raws = list(_json_items(body, label, location))
    else:
        raws = list(_xml_items(body, label, location, content_type, warnings))
    items: list[FeedItem] = []
    seen: set[str] = set()
    for number, raw in enumerate(raws, start=1):
        try:
            item = _item(raw, rules=rules, now=now)
        except (InvalidInputError, ValueError, OverflowError) as exc:
            # ValueError: urlsplit on a malformed IPv6 host; the fault is this item's alone.
            warnings.append(f"{label}: item {number}: {exc}; skipped")
            continue
        if item.key in seen:
            repeated = one_line(raw.guid or raw.link, limit=80)
            warnings.append(f"{label}: item {number}: repeats the id {repeated!r}; skipped")
            continue
        seen.add(item.key)
        items.append(item)
    return ParsedFeed(items=tuple(items), warnings=tuple(warnings))


def _item(raw: _Raw, *, rules: FeedRules, now: datetime) -> FeedItem:
    if raw.fault:
        raise InvalidInputError(raw.fault)
    # Never the guid: feedparser already gives a permalink guid as the link, and an
    # isPermaLink="false" guid is an identity, not an address.
    link = web_url(raw.link)
    if link is None:
        raise InvalidInputError(
            f"link {one_line(raw.link, limit=80)!r} is not an http(s) URL"
            if raw.link
            else "no link"
        )
    identity = one_line(raw.guid, limit=2000) or canonical_link(link)
    key = f"{rules.name}:{hashlib.sha256(identity.encode()).hexdigest()[:16]}"
    summary = html_text(raw.summary) if raw.summary_is_html else raw.summary
    published = min(raw.published or raw.updated or now, now)  # undated: the time first seen
    article_id = key
    if rules.resend_updated and raw.published and raw.updated and raw.updated > raw.published:
        published = min(raw.updated, now)
        article_id = f"{key}~{raw.updated:%Y%m%dT%H%M%SZ}"
    image, alt, own_image = _image(raw, base=link)
    mapping = {category.casefold(): section for category, section in rules.sections.items()}
    mapped = (mapping[c.casefold()] for c in raw.categories if c.casefold() in mapping)
    section = next(mapped, None) or _own_section(raw.categories, rules)
    record = {
        "id": article_id,
        "title": (html_text(raw.title) if raw.title_is_html else raw.title)
        or one_line(summary, limit=100),
        "summary": one_line(summary, limit=SUMMARY_LIMIT),
        "section": section,
        "url": link,
        "published_at": published,
        "image_url": image,
        "image_alt": alt,
        "author": html_text(raw.author),
    }
    return FeedItem(key=key, article=article_from_record(record, now=now), own_image=own_image)


def _own_section(categories: Sequence[str], rules: FeedRules) -> str:
    """The item's first category as a section, unless the feed's rules say to use the default."""
    if rules.sections_from_categories:
        for category in categories:
            cleaned = one_line(category, limit=100)
            if cleaned:
                return cleaned
    return rules.default_section


def _image(raw: _Raw, *, base: str) -> tuple[str | None, str, bool]:
    # (URL, alt, own?): enclosure or media, then the page's og:image (page_images), then <img>.
    for candidate in raw.images:
        url = web_url(urljoin(base, candidate.strip()))
        if url and not is_decoration(url):
            return url, "", True
    found = first_image(raw.markup)
    url = web_url(urljoin(base, found[0].strip())) if found else None
    return (url, html_text(found[1]), False) if url and found else (None, "", False)


# -- RSS and Atom, through feedparser -----------------------------------------------------------


def _xml_items(
    body: bytes, label: str, location: str, content_type: str, warnings: list[str]
) -> Iterator[_Raw]:
    headers = {"content-type": content_type or "application/xml"}
    if web_url(location):
        headers["content-location"] = location  # relative links resolve against the feed
    # A file-like object: feedparser must never treat the body as a URL or a path to open.
    # Its own sanitiser is off: clean_html (nh3) cleans every format the same way.
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers, sanitize_html=False)
    problem = parsed.get("bozo_exception")
    declared = _declare_prefixes(body) if _unbound_prefix(problem) else None
    if declared is not None:
        # Podcast feeds often use itunes: without its xmlns: declare it, and read again.
        parsed = feedparser.parse(
            io.BytesIO(declared), response_headers=headers, sanitize_html=False
        )
        if not _unbound_prefix(parsed.get("bozo_exception")):
            warnings.append(f"{label}: a namespace prefix is not declared; declared for it")
            problem = parsed.get("bozo_exception")
    if not parsed.get("version"):
        raise FeedError(
            f"{label}: not an RSS, Atom or JSON feed" + (f" ({problem})" if problem else "")
        )
    if isinstance(problem, xml.sax.SAXParseException):
        where = f"line {problem.getLineNumber()}: {problem.getMessage()}"
        # An undefined HTML entity (&nbsp;) is common and harmless; any other XML error means
        # the lenient parser would be guessing at the items, so the feed is refused.
        if problem.getMessage() != expat_errors.XML_ERROR_UNDEFINED_ENTITY:
            raise FeedError(f"{label}: not well-formed XML: {where}")
        warnings.append(f"{label}: not well-formed XML ({where}); read leniently")
    elif isinstance(problem, feedparser.CharacterEncodingOverride):
        warnings.append(f"{label}: {problem}")
    # A file has no address of its own: relative links resolve against the one it declares.
    base = location if web_url(location) else _declared_address(parsed.get("feed") or {})
    for entry in parsed.entries:
        raw = _xml_raw(entry)
        try:
            yield replace(raw, link=urljoin(base, raw.link)) if base and raw.link else raw
        except ValueError:  # a malformed IPv6 host: the item is skipped, saying so
            yield raw


def _unbound_prefix(problem: object) -> bool:
    return (
        isinstance(problem, xml.sax.SAXParseException)
        and problem.getMessage() == expat_errors.XML_ERROR_UNBOUND_PREFIX
    )


def _declare_prefixes(body: bytes) -> bytes | None:
    """The body with an xmlns for each element prefix it uses undeclared, on its root element."""
    used = set(_PREFIX.findall(body)) - {b"xml", b"xmlns"}
    missing = sorted(p for p in used if b"xmlns:" + p + b"=" not in body)
    root = _ROOT.search(body)
    if not missing or root is None:
        return None
    names = b"".join(
        b" xmlns:" + p + b'="' + _KNOWN_NAMESPACES.get(p, b"urn:undeclared:" + p) + b'"'
        for p in missing
    )
    return body[: root.end()] + names + body[root.end() :]


def _declared_address(channel: dict[str, Any]) -> str:
    selves = [link.get("href") for link in channel.get("links") or () if link.get("rel") == "self"]
    for candidate in (*selves, channel.get("link")):
        url = web_url(candidate)
        if url:
            return url
    return ""


def _xml_raw(entry: dict[str, Any]) -> _Raw:
    # dict.get, not entry.get: feedparser would quietly answer "updated" with the publish time.
    summary_detail = dict.get(entry, "summary_detail") or {}
    contents = dict.get(entry, "content") or []
    content = str(contents[0].get("value") or "") if contents else ""
    summary = str(dict.get(entry, "summary") or "")
    media = [m for m in dict.get(entry, "media_content") or () if not _tiny(m)]
    images = [m.get("url") for m in media if _is_image(m.get("medium"), m.get("type"))]
    images += [m.get("url") for m in dict.get(entry, "media_thumbnail") or () if not _tiny(m)]
    enclosures = entry.get("enclosures") or ()  # feedparser derives these from the links
    images += [e.get("href") for e in enclosures if str(e.get("type", "")).startswith("image/")]
    return _Raw(
        guid=str(dict.get(entry, "id") or ""),
        link=_link(entry),
        title=str(dict.get(entry, "title") or ""),
        title_is_html=(dict.get(entry, "title_detail") or {}).get("type") != "text/plain",
        summary=summary or content,
        summary_is_html=not summary or summary_detail.get("type") != "text/plain",
        markup=content or summary,
        published=_struct_time(dict.get(entry, "published_parsed")),
        updated=_struct_time(dict.get(entry, "updated_parsed")),
        categories=tuple(str(tag.get("term") or "") for tag in dict.get(entry, "tags") or ()),
        author=_byline(str(dict.get(entry, "author") or "")),
        images=tuple(str(url) for url in images if url),
    )


def _link(entry: dict[str, Any]) -> str:
    # feedparser makes only an HTML alternate the link, and else the entry's id; an entry whose
    # one alternate is a PDF still points there.
    link = str(dict.get(entry, "link") or "")
    if link and not dict.get(entry, "guidislink"):
        return link
    for alternate in dict.get(entry, "links") or ():
        if alternate.get("rel", "alternate") == "alternate" and alternate.get("href"):
            return str(alternate["href"])
    return link


def _byline(author: str) -> str:
    # RSS writes "desk@site (Name)"; feedparser's own split of it mangles some addresses.
    if "@" not in author:
        return author
    named = _EMAIL_NAME.fullmatch(author.strip())
    return named.group(1) if named else ""  # a bare address is no byline


def _tiny(media: dict[str, Any]) -> bool:
    return is_decoration("", width=media.get("width"), height=media.get("height"))


def _is_image(medium: object, mime: object) -> bool:
    if medium or mime:
        return medium == "image" or str(mime or "").startswith("image/")
    return True  # a bare media:content is nearly always the item's picture


def _struct_time(value: time.struct_time | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):
        return None


# -- JSON Feed 1.1 ------------------------------------------------------------------------------


def _json_items(body: bytes, label: str, location: str) -> Iterator[_Raw]:
    try:
        document = json.loads(body.decode("utf-8-sig"), parse_int=_int)
    except UnicodeDecodeError as exc:
        raise FeedError(
            f"{label}: JSON Feed is not UTF-8 (bad byte at offset {exc.start})"
        ) from exc
    except json.JSONDecodeError as exc:
        raise FeedError(f"{label}: not valid JSON: line {exc.lineno}: {exc.msg}") from exc
    except RecursionError as exc:  # "[[[[..." a few thousand deep
        raise FeedError(f"{label}: JSON nested too deeply") from exc
    # Several real feeds declare the version URL with http://.
    if not isinstance(document, dict) or not _str(document.get("version")).startswith(
        ("https://jsonfeed.org/version/1", "http://jsonfeed.org/version/1")
    ):
        raise FeedError(f"{label}: not an RSS, Atom or JSON feed (no JSON Feed version)")
    items = document.get("items")
    if not isinstance(items, list):
        raise FeedError(f"{label}: JSON Feed without an items list")
    for item in items:
        yield _json_raw(item, base=location) if isinstance(item, dict) else _Raw()


def _json_raw(item: dict[str, Any], *, base: str) -> _Raw:
    html = _str(item.get("content_html"))
    tags = item.get("tags")
    authors = item.get("authors") or [item.get("author")]
    first_author = authors[0] if isinstance(authors, list) and authors else None
    attachments = item.get("attachments")
    images = [_str(item.get("image")), _str(item.get("banner_image"))]
    images += [
        _str(a.get("url"))
        for a in (attachments if isinstance(attachments, list) else ())
        if isinstance(a, dict) and _str(a.get("mime_type")).startswith("image/")
    ]
    summary = _str(item.get("summary"))
    guid = item.get("id")
    huge = [key for key, value in item.items() if isinstance(value, _Huge)]
    link = _str(item.get("url")) or _str(item.get("external_url"))
    return _Raw(
        guid=str(guid) if isinstance(guid, str | int) and not isinstance(guid, bool) else "",
        link=urljoin(base, link) if link and web_url(base) else link,
        title=_str(item.get("title")),
        summary=summary or html or _str(item.get("content_text")),
        summary_is_html=not summary and bool(html),
        markup=html,
        published=_rfc3339(item.get("date_published")),
        updated=_rfc3339(item.get("date_modified")),
        categories=tuple(tag for tag in tags if isinstance(tag, str))
        if isinstance(tags, list)
        else (),
        author=_str(first_author.get("name")) if isinstance(first_author, dict) else "",
        images=tuple(url for url in images if url),
        fault=f"{huge[0]!r} is a number of over {_MAX_DIGITS} digits" if huge else "",
    )


class _Huge(int):
    """A JSON integer too long for int(): Python refuses to convert it (int_max_str_digits)."""


def _int(text: str) -> int:
    return int(text) if len(text) <= _MAX_DIGITS else _Huge(0)


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _rfc3339(value: object) -> datetime | None:
    try:
        moment = datetime.fromisoformat(_str(value))
        # In UTC, so a date at the calendar's edge (year 1, +01:00) fails here, not in the store.
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
