"""Counted links: GET|HEAD /c/<token>/<reader> answers 302 to the article, /o/... a pixel.

A click of an edition the process has seen is answered on the event loop from the resolver's
caches. With per_subscriber tracking the reader's delivery time may be missing: the clicks
that wait for one go together in one query on a worker thread (`copies_sent`, batched as
the writes are); a new edition is read on a worker thread. The click row is written behind
the answer, in batches (`digest.web.clicks_writer`). A forged or altered token is answered
404 with no Location, so the redirect can only ever lead to an article the edition holds.
"""

from __future__ import annotations

import base64

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.operations.clicks import CopySent, Followed, Lookup
from digest.web.context import web_context

# A transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"cache-control": "no-store", "referrer-policy": "no-referrer"}


async def _follow(request: Request, kind: str) -> Response:
    ctx = web_context(request)
    token, reader = str(request.path_params["token"]), str(request.path_params["reader"])
    method, agent, now = request.method, request.headers.get("user-agent", ""), ctx.clock()
    followed = ctx.clicks.follow(
        token, reader, method=method, user_agent=agent, now=now, kind=kind, read_store=False
    )
    if isinstance(followed, CopySent):
        await ctx.copies_sent.submit(followed)
        followed = ctx.clicks.follow(
            token,
            reader,
            method=method,
            user_agent=agent,
            now=now,
            kind=kind,
            read_store=False,
            asked=True,
        )
    if isinstance(followed, CopySent | Lookup):  # a new edition
        followed = await run_in_threadpool(
            lambda: ctx.clicks.follow(
                token, reader, method=method, user_agent=agent, now=now, kind=kind
            )
        )
    if not isinstance(followed, Followed):
        return Response("not found\n", status_code=404, headers=NO_STORE, media_type="text/plain")
    if followed.row is not None:
        ctx.click_writer.record(followed.row)
    if kind == "open":
        return Response(PIXEL, headers=NO_STORE, media_type="image/gif")
    return Response(status_code=302, headers={**NO_STORE, "location": followed.location})


async def click(request: Request) -> Response:
    """A counted link: count the click, send the reader to the article."""
    return await _follow(request, "click")


async def open_pixel(request: Request) -> Response:
    """The open pixel (only in lists with opens = true): count the fetch, answer a GIF."""
    return await _follow(request, "open")


CLICK_ROUTES = [
    Route("/c/{token}/{reader}", click, methods=["GET", "HEAD"]),
    Route("/o/{token}/{reader}", open_pixel, methods=["GET", "HEAD"]),
]
