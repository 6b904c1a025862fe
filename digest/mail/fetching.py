"""The only module that speaks HTTP: fetch a feed with a conditional GET, a deadline, a size cap,
and the head of an article page for the image it names.

Only http(s) URLs to public addresses, also after a redirect (see destinations.py). No
compression is asked for, so the cap counts the very bytes that get parsed and a small gzip
body cannot unpack into a huge one. Every failure is a FeedError naming the URL.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from digest.config import FeedsSettings
from digest.errors import FeedError
from digest.intake.articles import web_url
from digest.mail.destinations import Destinations

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json,"
    " application/xml;q=0.9, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
# Where a page's head has surely ended: the image it names is in there, the story is not needed.
_HEAD_ENDS = (b"</head", b"<body")
_CHUNK = 64 * 1024
_REDIRECTS = 5
_REDIRECT_CODES = (301, 302, 303, 307, 308)


@dataclass(frozen=True, slots=True)
class Fetched:
    """A feed's answer: a body, or `not_modified` (304) with no body; and the next validators."""

    url: str
    body: bytes = b""
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    content_type: str = ""


def fetch(
    url: str, *, limits: FeedsSettings, etag: str | None = None, last_modified: str | None = None
) -> Fetched:
    """GET `url`, conditionally when validators are given; the whole answer within
    `limits.timeout` seconds (checked between reads) and at most `limits.max_bytes` long.

    Redirects are followed here, at most `_REDIRECTS` of them, each hop checked as the first
    (scheme, and the addresses its host resolves to: see destinations.py).
    """
    headers = {"User-Agent": limits.user_agent, "Accept": ACCEPT, "Accept-Encoding": "identity"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = time.monotonic() + limits.timeout

    def read(answer: http.client.HTTPResponse, current: str) -> Fetched:
        return _answer(
            answer,
            current,
            url=url,
            limits=limits,
            deadline=deadline,
            etag=etag,
            last_modified=last_modified,
        )

    return _get(url, headers, limits=limits, timeout=limits.timeout, read=read)


def fetch_page_head(url: str, *, limits: FeedsSettings) -> Fetched:
    """GET an HTML page for what its <head> says: at most `limits.page_bytes` of it, read no
    further than where the head ends, within `limits.page_timeout` seconds.

    The same guard and redirect rules as `fetch`; a FeedError naming the URL when the page does
    not answer 2xx in time, or is not HTML.
    """
    headers = {
        "User-Agent": limits.user_agent,
        "Accept": PAGE_ACCEPT,
        "Accept-Encoding": "identity",
    }
    deadline = time.monotonic() + limits.page_timeout

    def read(answer: http.client.HTTPResponse, current: str) -> Fetched:
        _succeeded(answer, url=url)
        content_type = answer.getheader("Content-Type", "")
        if content_type.split(";")[0].strip().lower() not in _HTML_TYPES:
            raise FeedError(f"{url}: not an HTML page ({content_type or 'no Content-Type'})")
        body = _body(
            lambda: _read_head(answer, url=url, limits=limits, deadline=deadline),
            url=url,
            timeout=limits.page_timeout,
        )
        return Fetched(url=current, body=body, content_type=content_type)

    return _get(url, headers, limits=limits, timeout=limits.page_timeout, read=read)


def _get(
    url: str,
    headers: dict[str, str],
    *,
    limits: FeedsSettings,
    timeout: float,
    read: Callable[[http.client.HTTPResponse, str], Fetched],
) -> Fetched:
    """GET `url`, following redirects, at most `_REDIRECTS` of them, each hop checked as the
    first (scheme, and the addresses its host resolves to: see destinations.py); `read` makes
    the final answer, from the response and the URL it came from, before the connection closes.
    """
    destinations = Destinations.of(
        allow_private=limits.allow_private, networks=limits.allow_networks
    )
    if web_url(url) is None:
        raise FeedError(f"{url[:200]!r} is not an http(s) URL")
    current = url
    for _ in range(_REDIRECTS + 1):
        if web_url(current) is None:
            raise FeedError(f"{url}: redirected to {current[:200]!r}, not an http(s) URL")
        connection = _connection(current, destinations, timeout)
        try:
            answer = _request(connection, current, headers, url=url, timeout=timeout)
            location = answer.getheader("Location")
            if answer.status in _REDIRECT_CODES and location:
                current = urljoin(current, location.strip())
                continue
            return read(answer, current)
        finally:
            connection.close()
    raise FeedError(f"{url}: more than {_REDIRECTS} redirects")


def _connection(url: str, destinations: Destinations, timeout: float) -> http.client.HTTPConnection:
    """A connection to the checked address of the URL's host, not yet open."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise FeedError(f"{url}: bad port: {exc}") from exc
    address = destinations.resolve(url, host, port)
    if parts.scheme == "https":
        return _PinnedHTTPS(host, port, address=address, timeout=timeout)
    return _PinnedHTTP(host, port, address=address, timeout=timeout)


def _request(
    connection: http.client.HTTPConnection,
    current: str,
    headers: dict[str, str],
    *,
    url: str,
    timeout: float,
) -> http.client.HTTPResponse:
    """Send the GET and read the status line and headers, errors as FeedErrors."""
    parts = urlsplit(current)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("GET", target, headers=headers)
        return connection.getresponse()
    except TimeoutError as exc:
        raise FeedError(f"{url}: no answer within {timeout:g} s") from exc
    except ssl.SSLError as exc:
        raise FeedError(f"{url}: cannot connect: TLS: {exc.reason or exc}") from exc
    except http.client.HTTPException as exc:
        raise FeedError(f"{url}: broken answer: {exc.__class__.__name__}: {exc}") from exc
    except OSError as exc:
        raise FeedError(f"{url}: cannot connect: {exc.strerror or exc}") from exc


def _answer(
    answer: http.client.HTTPResponse,
    current: str,
    *,
    url: str,
    limits: FeedsSettings,
    deadline: float,
    etag: str | None,
    last_modified: str | None,
) -> Fetched:
    if answer.status == 304:
        # A 304 may carry fresh validators; without them the ones sent stay good.
        return Fetched(
            url=current,
            not_modified=True,
            etag=answer.getheader("ETag") or etag,
            last_modified=answer.getheader("Last-Modified") or last_modified,
        )
    _succeeded(answer, url=url)
    body = _body(
        lambda: _read_capped(answer, url=url, limits=limits, deadline=deadline),
        url=url,
        timeout=limits.timeout,
    )
    return Fetched(
        url=current,
        body=body,
        etag=answer.getheader("ETag"),
        last_modified=answer.getheader("Last-Modified"),
        content_type=answer.getheader("Content-Type", ""),
    )


def _succeeded(answer: http.client.HTTPResponse, *, url: str) -> None:
    """Refuse an answer that is not 2xx, naming the URL asked for."""
    if not 200 <= answer.status < 300:
        raise FeedError(f"{url}: HTTP {answer.status} {answer.reason}")


def _body(read: Callable[[], bytes], *, url: str, timeout: float) -> bytes:
    """What `read` reads of an answer's body, its failures as one FeedError naming the URL."""
    try:
        return read()
    except TimeoutError as exc:
        raise FeedError(f"{url}: no answer within {timeout:g} s") from exc
    except (http.client.HTTPException, OSError) as exc:
        raise FeedError(f"{url}: broken answer: {exc.__class__.__name__}: {exc}") from exc


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to an address checked beforehand; the Host header still names the host."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(_PinnedHTTP):
    """HTTPS to an address checked beforehand; the certificate must name the host."""

    default_port = 443

    def connect(self) -> None:
        super().connect()
        context = ssl.create_default_context()
        self.sock = context.wrap_socket(self.sock, server_hostname=self.host)


def _read_capped(
    answer: http.client.HTTPResponse, *, url: str, limits: FeedsSettings, deadline: float
) -> bytes:
    declared = answer.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise FeedError(
            f"{url}: body of {int(declared)} bytes is over the {limits.max_bytes}-byte cap"
        )
    chunks: list[bytes] = []
    size = 0
    while chunk := answer.read1(_CHUNK):
        size += len(chunk)
        if size > limits.max_bytes:
            raise FeedError(f"{url}: body is over the {limits.max_bytes}-byte cap")
        if time.monotonic() > deadline:
            raise FeedError(f"{url}: answer not complete within {limits.timeout:g} s")
        chunks.append(chunk)
    return b"".join(chunks)


def _read_head(
    answer: http.client.HTTPResponse, *, url: str, limits: FeedsSettings, deadline: float
) -> bytes:
    """The page up to where its head ends, or its first `limits.page_bytes` bytes."""
    body = b""
    while len(body) < limits.page_bytes and (chunk := answer.read1(_CHUNK)):
        if time.monotonic() > deadline:
            raise FeedError(f"{url}: answer not complete within {limits.page_timeout:g} s")
        # From a little before the new chunk: a tag split between two reads is still found.
        seen = (body[-8:] + chunk).lower()
        body += chunk
        if any(end in seen for end in _HEAD_ENDS):
            break
    return body[: limits.page_bytes]
