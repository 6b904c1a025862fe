"""The only module that speaks HTTP: fetch a feed with a conditional GET, a deadline, a size cap.

Only http(s) URLs, also after a redirect. No compression is asked for, so the cap counts the very
bytes that get parsed and a small gzip body cannot unpack into a huge one. Every failure is a
FeedError naming the URL.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import IO

from digest.config import FeedsSettings
from digest.errors import FeedError
from digest.intake.articles import web_url

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json,"
    " application/xml;q=0.9, */*;q=0.5"
)
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Fetched:
    """A feed's answer: a body, or `not_modified` (304) with no body; and the next validators."""

    url: str
    not_modified: bool
    body: bytes
    etag: str | None
    last_modified: str | None
    content_type: str = ""


class _HTTPOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s): never to file:, ftp: or data:."""

    def redirect_request(  # noqa: PLR0917 (urllib's signature, positional as it calls it)
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if web_url(newurl) is None:
            raise FeedError(f"{req.full_url}: redirected to {newurl[:200]!r}, not an http(s) URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(
    url: str, *, limits: FeedsSettings, etag: str | None = None, last_modified: str | None = None
) -> Fetched:
    """GET `url`, conditionally when validators are given; the whole answer within
    `limits.timeout` seconds (checked between reads) and at most `limits.max_bytes` long."""
    if web_url(url) is None:
        raise FeedError(f"{url[:200]!r} is not an http(s) URL")
    headers = {"User-Agent": limits.user_agent, "Accept": ACCEPT, "Accept-Encoding": "identity"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    opener = urllib.request.build_opener(_HTTPOnlyRedirects())
    deadline = time.monotonic() + limits.timeout
    try:
        with opener.open(
            urllib.request.Request(url, headers=headers), timeout=limits.timeout
        ) as answer:
            body = _read_capped(answer, url=url, limits=limits, deadline=deadline)
            return Fetched(
                url=answer.geturl(),
                not_modified=False,
                body=body,
                etag=answer.headers.get("ETag"),
                last_modified=answer.headers.get("Last-Modified"),
                content_type=answer.headers.get("Content-Type", ""),
            )
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            # A 304 may carry fresh validators; without them the ones sent stay good.
            return Fetched(
                url=url,
                not_modified=True,
                body=b"",
                etag=exc.headers.get("ETag") or etag,
                last_modified=exc.headers.get("Last-Modified") or last_modified,
            )
        raise FeedError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise FeedError(f"{url}: no answer within {limits.timeout:g} s") from exc
        raise FeedError(f"{url}: cannot connect: {exc.reason}") from exc
    except TimeoutError as exc:
        raise FeedError(f"{url}: no answer within {limits.timeout:g} s") from exc
    except (http.client.HTTPException, OSError) as exc:
        raise FeedError(f"{url}: broken answer: {exc.__class__.__name__}: {exc}") from exc


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
