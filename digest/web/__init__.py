"""`digest web`: the publisher's pages for readers and editors, as one Starlette app.

    GET  /, /subscribe                 sign-up form (CSRF token, honeypot, rate limits)
    POST /subscribe                    -> a confirmation mail with a signed link
    GET  /confirm/<token>              a page with a "Confirm" button (changes nothing)
    POST /confirm/<token>              activates the subscription (double opt-in)
    GET  /u/<list>/<token>             a page with an "Unsubscribe" button (changes nothing)
    POST /u/<list>/<token>             RFC 8058 one-click: unsubscribes, 200, no redirect (the
                                       page's button posts here too, with via=page)
    GET  /unsubscribe                  where archived editions' unsubscribe link leads
    GET|POST /preferences/<token>      lists and sections (signed link per subscriber)
    GET  /archive, /archive/<list>     indexes of sent editions
    GET  /archive/<list>/<YYYY-MM-DD>  a sent edition, slots filled neutrally
    GET  /editor/preview/<list>        the next edition; X-Editor-Token header or ?token=
    GET|HEAD /c/<token>/<reader>       a counted link: 302 to the article (digest.web.clicks)
    GET|HEAD /o/<token>/<reader>       the open pixel, for lists with opens = true
    /desk, /desk/...                   the editors' desk, behind a sign-in (digest.web.desk)

Known and unknown unsubscribe tokens get byte-identical answers. Nothing is cached that
belongs to one reader; no page holds a script.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest.config import ListSettings, Settings
from digest.errors import DigestError, NotFoundError
from digest.models import UnsubscribeChannel
from digest.operations.archive import archive_index, archived_page, editor_preview
from digest.web.clicks import CLICK_ROUTES
from digest.web.context import WebContext, web_context
from digest.web.desk import DESK_ROUTES
from digest.web.desk_people import PEOPLE_ROUTES, UPLOAD_PATH
from digest.web.desk_sending import SENDING_ROUTES
from digest.web.edge import BodyLimit, TrustedProxies
from digest.web.guard import client_address, editor_allowed
from digest.web.pages import EDITION_POLICY, PRIVATE, SecurityHeaders
from digest.web.signup import SIGNUP_ROUTES

log = logging.getLogger("digest.web")
ONE_CLICK = ("List-Unsubscribe", "One-Click")
VIA_FIELD = "via"  # the unsubscribe page's button says where it was pressed


def known_list(request: Request) -> ListSettings:
    """The list the path names; an unknown one is not found."""
    slug = str(request.path_params["list"])
    for item in web_context(request).settings.lists:
        if item.slug == slug:
            return item
    raise NotFoundError(f"unknown list {slug!r}")


async def unsubscribe_page(request: Request) -> Response:
    ctx = web_context(request)
    mailing_list = known_list(request)
    # A person follows this link: a broken one gets told so, not a button that would do nothing.
    token = str(request.path_params["token"])
    if ctx.subscriptions.unsubscribe_reader(mailing_list.slug, token) is None:
        return _broken_link(ctx)
    return ctx.pages.response("unsubscribe.html.j2", headers=PRIVATE, mailing_list=mailing_list)


def _broken_link(ctx: WebContext) -> Response:
    return ctx.pages.response("unsubscribe_help.html.j2", status=404, headers=PRIVATE, broken=True)


async def unsubscribe(request: Request) -> Response:
    ctx = web_context(request)
    # RFC 8058: no cookie, no CSRF token, no redirect; the token is the authority.
    mailing_list = known_list(request)
    slug = mailing_list.slug
    # A mailbox provider posts for many readers from a few servers: only forged or mangled
    # tokens count against the address, so a genuine one is never refused.
    subscriber_id = ctx.subscriptions.unsubscribe_reader(slug, str(request.path_params["token"]))
    if subscriber_id is None and not ctx.unsubscribes_by_ip.allow(
        client_address(request), ctx.ticker()
    ):
        return ctx.pages.response("too_many.html.j2", status=429, headers={"retry-after": "60"})
    form = await request.form(max_files=0, max_fields=20)
    if form.get(ONE_CLICK[0]) != ONE_CLICK[1]:
        return ctx.pages.response("bad_request.html.j2", status=400, headers=PRIVATE)
    # The link's own page posts the same form with one field more; a mail client, RFC 8058's.
    page = form.get(VIA_FIELD) == UnsubscribeChannel.PAGE
    if page and subscriber_id is None:
        return _broken_link(ctx)  # a mailbox provider's POST gets the same answer either way
    channel = UnsubscribeChannel.PAGE if page else UnsubscribeChannel.ONE_CLICK
    if subscriber_id is not None:
        await ctx.one_click.unsubscribe(subscriber_id, slug, channel=channel)
    return ctx.pages.response("unsubscribed.html.j2", headers=PRIVATE, mailing_list=mailing_list)


async def generic_unsubscribe(request: Request) -> Response:
    ctx = web_context(request)
    return ctx.pages.response("unsubscribe_help.html.j2")


async def archive_lists(request: Request) -> Response:
    ctx = web_context(request)
    return ctx.pages.response("archive_lists.html.j2")


async def archive_list(request: Request) -> Response:
    ctx = web_context(request)
    mailing_list = known_list(request)
    slug = mailing_list.slug
    entries = await run_in_threadpool(lambda: archive_index(ctx.publisher.store, slug))
    return ctx.pages.response("archive_index.html.j2", mailing_list=mailing_list, entries=entries)


async def archive_edition(request: Request) -> Response:
    ctx = web_context(request)
    mailing_list = known_list(request)
    slug = mailing_list.slug
    day = _day(str(request.path_params["day"]))
    page = await run_in_threadpool(
        lambda: archived_page(ctx.settings, ctx.publisher.store, slug, day)
    )
    if page is None:
        raise NotFoundError(f"no sent edition of {slug} on {day}")
    return HTMLResponse(
        page,
        headers={"content-security-policy": EDITION_POLICY, "cache-control": "max-age=300"},
    )


async def preview(request: Request) -> Response:
    ctx = web_context(request)
    if not editor_allowed(request, ctx.settings.web.editor_token.get_secret_value()):
        return ctx.pages.response("forbidden.html.j2", status=403, headers=PRIVATE)
    mailing_list = known_list(request)
    slug = mailing_list.slug
    try:
        now = _moment(request.query_params.get("at")) or ctx.clock()
    except ValueError as exc:
        # The editor, not a reader, sees this: say what is wrong with the query.
        return PlainTextResponse(f"{exc}\n", status_code=400, headers=PRIVATE)
    page = await run_in_threadpool(
        lambda: editor_preview(
            ctx.settings, ctx.publisher.store, ctx.publisher.renderer, slug, now=now
        )
    )
    return HTMLResponse(
        page.html,
        headers={
            **PRIVATE,
            "content-security-policy": EDITION_POLICY,
            "x-digest-edition": f"{'stored' if page.stored else 'draft'} {page.edition_date}",
        },
    )


async def not_found(request: Request, exc: Exception) -> Response:
    ctx = web_context(request)
    return ctx.pages.response("not_found.html.j2", status=404)


async def http_error(request: Request, exc: Exception) -> Response:
    ctx = web_context(request)
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return await not_found(request, exc)
    return ctx.pages.response("bad_request.html.j2", status=status)


async def failure(request: Request, exc: Exception) -> Response:
    ctx = web_context(request)
    # Only the first path segment: the rest may be a reader's token.
    log.error("%s /%s/... failed: %s", request.method, request.url.path.split("/")[1], exc)
    return ctx.pages.response("unavailable.html.j2", status=503)


ROUTES = [
    *SIGNUP_ROUTES,
    *DESK_ROUTES,
    *SENDING_ROUTES,
    *PEOPLE_ROUTES,
    *CLICK_ROUTES,
    Route("/u/{list}/{token}", unsubscribe_page, methods=["GET"]),
    Route("/u/{list}/{token}", unsubscribe, methods=["POST"]),
    Route("/unsubscribe", generic_unsubscribe, methods=["GET"]),
    Route("/archive", archive_lists, methods=["GET"]),
    Route("/archive/{list}", archive_list, methods=["GET"]),
    Route("/archive/{list}/{day}", archive_edition, methods=["GET"]),
    Route("/editor/preview/{list}", preview, methods=["GET"]),
]


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    # Unsubscribes a previous process journaled while the database was busy go in first.
    ctx: WebContext = app.state.ctx
    await run_in_threadpool(ctx.one_click.apply_journal)
    yield
    await ctx.click_writer.flush()  # the clicks answered but not yet written


def create_app(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> Starlette:
    """The web app for `settings`; `clock` (default: the real one) says what time it is.

    The handlers are plain functions of the request: what they share (settings, store,
    pages, guards, clock) is the app's `state.ctx`.
    """
    web = Starlette(
        routes=ROUTES,
        # Outermost first: a too-large body is refused before anything else is done.
        middleware=[
            Middleware(
                BodyLimit,
                limit=settings.web.max_body_bytes,
                paths={UPLOAD_PATH: settings.desk.upload_bytes},
            ),
            Middleware(TrustedProxies, proxies=settings.web.trusted_proxies),
            Middleware(SecurityHeaders),
        ],
        exception_handlers={
            NotFoundError: not_found,
            HTTPException: http_error,
            DigestError: failure,
        },
        lifespan=_lifespan,
    )
    web.state.ctx = WebContext.build(settings, clock=clock)
    return web


def _day(value: str) -> date:
    """A YYYY-MM-DD path segment; anything else is not found."""
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise NotFoundError(f"{value!r} is not a date")


_EARLIEST_AT, _LATEST_AT = 1970, 9000


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"?at={value} is not an ISO date-time") from exc
    if moment.tzinfo is None:
        raise ValueError(f"?at={value} needs a time zone, e.g. 2026-03-02T07:00+01:00")
    # Far from either end of what datetime holds, so a list's zone and lookback stay in range.
    if not _EARLIEST_AT <= moment.year <= _LATEST_AT:
        raise ValueError(f"?at={value} must lie in the years {_EARLIEST_AT}-{_LATEST_AT}")
    return moment
