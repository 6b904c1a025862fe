"""The editors' desk at /desk: sign-in, and today's drafts of every list.

    GET  /desk/sign-in            the sign-in form (CSRF)
    POST /desk/sign-in            -> a session cookie and /desk, or the form again
    POST /desk/sign-out           ends every session of the editor
    GET  /desk                    each list: next run, the draft's subject, size and parts
    GET  /desk/draft/<list>       the draft's HTML, framed by /desk at desktop and phone widths
                                  (?scheme=light|dark: its light or dark colours)
    POST /desk/approve/<list>     approve the list's waiting edition (CSRF); `digest run` sends it
    POST /desk/test-send/<list>   the edition as it stands to one address, "[Test]" (CSRF)
    POST /desk/shape/<list>       one change to the draft (digest.web.desk_shape) (CSRF)
    GET  /desk/stats[/<edition>[.csv]]  editions' health and clicks (digest.web.desk_stats)

Every page but the sign-in form needs a session: a GET without one is sent to the form, any
other request is refused with 403. The session cookie is HttpOnly, SameSite=Strict, scoped to
/desk and Secure over https; it carries the editor's session epoch, so signing out ends it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from digest.errors import DigestError, NotFoundError
from digest.operations.approval import approve
from digest.operations.desk import desk_draft
from digest.operations.editors import (
    SignIn,
    session_cookie,
    session_editor,
    sign_in,
    sign_out,
)
from digest.store import Editor
from digest.web.context import web_context
from digest.web.desk_shape import forced_scheme, scheme_of, shape_submit
from digest.web.desk_stats import stats_csv_file, stats_index, stats_page
from digest.web.guard import CSRF_FIELD, client_address
from digest.web.pages import EDITION_POLICY, PRIVATE

SESSION_COOKIE = "digest_desk"
SIGN_IN = "/desk/sign-in"
# The desk frames its own drafts; nothing else may frame anything.
DESK_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
DRAFT_POLICY = EDITION_POLICY.replace("frame-ancestors 'none'", "frame-ancestors 'self'")
_PAGE_HEADERS = {**PRIVATE, "content-security-policy": DESK_POLICY}

Handler = Callable[[Request, Editor], Awaitable[Response]]


def _desk_page(handler: Handler) -> Handler:
    """`handler`'s page with the desk's headers (its content security policy)."""

    async def page(request: Request, editor: Editor) -> Response:
        response = await handler(request, editor)
        response.headers.update(_PAGE_HEADERS)
        return response

    return page


def current_editor(request: Request) -> Editor | None:
    """The editor whose valid session cookie came with the request, if any."""
    ctx = web_context(request)
    return session_editor(
        ctx.publisher.store,
        request.cookies.get(SESSION_COOKIE, ""),
        secrets=ctx.settings.site.unsubscribe_secrets(),
        settings=ctx.settings.desk,
        now=ctx.clock(),
    )


def signed_in(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Run `handler` only for a signed-in editor: a GET goes to the sign-in form first,
    anything else is refused."""

    async def guarded(request: Request) -> Response:
        editor = await run_in_threadpool(current_editor, request)
        if editor is None:
            if request.method == "GET":
                target = quote(request.url.path, safe="/")
                return RedirectResponse(f"{SIGN_IN}?next={target}", status_code=303)
            ctx = web_context(request)
            return ctx.pages.response("forbidden.html.j2", status=403, headers=PRIVATE)
        return await handler(request, editor)

    return guarded


def _next_page(value: str | None) -> str:
    """Where to go after signing in: a desk path of this site only (no open redirect)."""
    if not value:
        return "/desk"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/desk") or "\\" in value:
        return "/desk"
    return parts.path


async def sign_in_page(request: Request) -> Response:
    ctx = web_context(request)
    return ctx.form_page(
        request,
        "desk/sign_in.html.j2",
        email="",
        error="",
        next=_next_page(request.query_params.get("next")),
    )


async def sign_in_submit(request: Request) -> Response:
    ctx = web_context(request)
    form = await request.form(max_files=0, max_fields=10)
    nxt = _next_page(str(form.get("next", "")))
    email = str(form.get("email", ""))[:320]

    def again(error: str, status: int) -> Response:
        return ctx.form_page(
            request, "desk/sign_in.html.j2", status=status, email=email, error=error, next=nxt
        )

    if not ctx.csrf.valid(request, form.get(CSRF_FIELD)):
        return again("The form had expired. Please sign in again.", 403)
    if not ctx.desk_sign_ins_by_ip.allow(client_address(request), ctx.ticker()):
        return again("Too many sign-in attempts from here. Wait a minute and try again.", 429)
    password = str(form.get("password", ""))[:1024]
    now = ctx.clock()
    result = await run_in_threadpool(
        lambda: sign_in(ctx.publisher.store, email, password, settings=ctx.settings.desk, now=now)
    )
    if result.outcome is SignIn.LOCKED and result.locked_until is not None:
        until = f"{result.locked_until:%H:%M} UTC"
        return again(f"Too many wrong passwords: this account is locked until {until}.", 429)
    if result.outcome is not SignIn.OK or result.editor is None:
        return again("Wrong address or password.", 401)
    site = ctx.settings.site
    value = session_cookie(
        result.editor,
        secret=site.unsubscribe_secret.get_secret_value().encode(),
        key_id=site.unsubscribe_key_id,
        now=now,
    )
    response = RedirectResponse(nxt, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(ctx.settings.desk.session_hours * 3600),
        path="/desk",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@signed_in
async def sign_out_submit(request: Request, editor: Editor) -> Response:
    ctx = web_context(request)
    form = await request.form(max_files=0, max_fields=5)
    if not ctx.csrf.valid(request, form.get(CSRF_FIELD)):
        return ctx.pages.response("forbidden.html.j2", status=403, headers=PRIVATE)
    await run_in_threadpool(sign_out, ctx.publisher.store, editor)
    response = RedirectResponse(SIGN_IN, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/desk")
    return response


async def _today_page(
    request: Request, editor: Editor, *, notice: str = "", status: int = 200
) -> Response:
    ctx = web_context(request)
    now = ctx.clock()
    drafts = await run_in_threadpool(
        lambda: [
            desk_draft(
                ctx.settings, ctx.publisher.store, ctx.publisher.renderer, item.slug, now=now
            )
            for item in ctx.settings.lists
        ]
    )
    response = ctx.form_page(
        request,
        "desk/today.html.j2",
        status=status,
        editor=editor,
        drafts=drafts,
        notice=notice,
        scheme=scheme_of(request),
    )
    response.headers.update(_PAGE_HEADERS)
    return response


@signed_in
async def today(request: Request, editor: Editor) -> Response:
    return await _today_page(request, editor)


def _list_slug(request: Request) -> str:
    slug = str(request.path_params["list"])
    if slug not in {item.slug for item in web_context(request).settings.lists}:
        raise NotFoundError(f"unknown list {slug!r}")
    return slug


@signed_in
async def approve_submit(request: Request, editor: Editor) -> Response:
    ctx = web_context(request)
    slug = _list_slug(request)
    form = await request.form(max_files=0, max_fields=5)
    if not ctx.csrf.valid(request, form.get(CSRF_FIELD)):
        return ctx.pages.response("forbidden.html.j2", status=403, headers=PRIVATE)
    now = ctx.clock()
    try:
        await run_in_threadpool(lambda: approve(ctx.publisher, slug, editor=editor.email, now=now))
    except DigestError as exc:  # nothing waits (decided meanwhile, not made yet)
        return await _today_page(request, editor, notice=str(exc), status=409)
    return RedirectResponse("/desk", status_code=303)


@signed_in
async def test_send_submit(request: Request, editor: Editor) -> Response:
    ctx = web_context(request)
    slug = _list_slug(request)
    form = await request.form(max_files=0, max_fields=5)
    if not ctx.csrf.valid(request, form.get(CSRF_FIELD)):
        return ctx.pages.response("forbidden.html.j2", status=403, headers=PRIVATE)
    to = str(form.get("to", ""))[:320]
    now = ctx.clock()
    try:
        reply = await run_in_threadpool(lambda: ctx.publisher.test_send(slug, to=to, now=now))
    except DigestError as exc:  # a bad address, the relay unreachable
        return await _today_page(request, editor, notice=f"Test send failed: {exc}", status=400)
    if not reply.accepted:
        return await _today_page(
            request, editor, notice=f"The relay refused the test send to {to}: {reply}", status=502
        )
    return await _today_page(request, editor, notice=f"Test sent to {to}.")


@signed_in
async def draft_html(request: Request, editor: Editor) -> Response:
    ctx = web_context(request)
    slug = _list_slug(request)
    now = ctx.clock()
    draft = await run_in_threadpool(
        lambda: desk_draft(ctx.settings, ctx.publisher.store, ctx.publisher.renderer, slug, now=now)
    )
    return HTMLResponse(
        forced_scheme(draft.html, scheme_of(request)),
        headers={
            **PRIVATE,
            "content-security-policy": DRAFT_POLICY,
            "x-frame-options": "SAMEORIGIN",
        },
    )


DESK_ROUTES = [
    Route(SIGN_IN, sign_in_page, methods=["GET"]),
    Route(SIGN_IN, sign_in_submit, methods=["POST"]),
    Route("/desk/sign-out", sign_out_submit, methods=["POST"]),
    Route("/desk", today, methods=["GET"]),
    Route("/desk/draft/{list}", draft_html, methods=["GET"]),
    Route("/desk/approve/{list}", approve_submit, methods=["POST"]),
    Route("/desk/test-send/{list}", test_send_submit, methods=["POST"]),
    Route("/desk/shape/{list}", signed_in(shape_submit), methods=["POST"]),
    Route("/desk/stats", signed_in(_desk_page(stats_index)), methods=["GET"]),
    Route("/desk/stats/{edition}.csv", signed_in(stats_csv_file), methods=["GET"]),
    Route("/desk/stats/{edition}", signed_in(_desk_page(stats_page)), methods=["GET"]),
]
