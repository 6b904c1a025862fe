"""Pages for sign-up (double opt-in), confirmation and preferences."""

from __future__ import annotations

import asyncio

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.errors import InvalidInputError, StoreError
from digest.intake.people import normalise_address
from digest.web.context import web_context
from digest.web.guard import CSRF_FIELD, client_address
from digest.web.oneclick import PATIENCE
from digest.web.pages import PRIVATE

# The honeypot: a field people never see (positioned off-screen), which bots fill in.
HONEYPOT = "website"
_MAX_FIELDS = 100


def _text(value: object, limit: int = 400) -> str:
    return value[:limit] if isinstance(value, str) else ""


async def signup_form(request: Request) -> Response:
    ctx = web_context(request)
    return ctx.form_page(request, "subscribe.html.j2", email="", name="", chosen=(), error="")


async def signup(request: Request) -> Response:
    ctx = web_context(request)
    form = await request.form(max_files=0, max_fields=_MAX_FIELDS)
    if not ctx.csrf.valid(request, form.get(CSRF_FIELD)):
        return ctx.pages.response("expired.html.j2", status=403)
    if not ctx.signups_by_ip.allow(client_address(request), ctx.ticker()):
        return ctx.pages.response("too_many.html.j2", status=429, headers={"retry-after": "3600"})
    sent = ctx.pages.response("check_inbox.html.j2", headers=PRIVATE)
    if _text(form.get(HONEYPOT)):
        return sent  # a bot: it is told the same as a person, and nothing happens
    email, name = _text(form.get("email")), _text(form.get("name"))
    chosen = tuple(_text(v, 63) for v in form.getlist("list"))
    try:
        address = normalise_address(email)
        if not chosen:
            raise InvalidInputError("choose at least one newsletter")
        if not ctx.signups_by_address.allow(address.lower(), ctx.ticker()):
            return sent  # an address asked for too often: no more mail, nothing said
        mail = await run_in_threadpool(
            lambda: ctx.subscriptions.sign_up(
                email=address, name=name, list_slugs=chosen, now=ctx.clock()
            )
        )
    except InvalidInputError as exc:
        return ctx.form_page(
            request,
            "subscribe.html.j2",
            status=400,
            email=email,
            name=name,
            chosen=chosen,
            error=_reason(exc),
        )
    sent.background = BackgroundTask(ctx.send_confirmation, mail)
    return sent


async def confirm_page(request: Request) -> Response:
    ctx = web_context(request)
    token = request.path_params["token"]
    found = await run_in_threadpool(
        lambda: ctx.subscriptions.pending_confirmation(token, now=ctx.clock())
    )
    if found is None:
        return ctx.pages.response("link_invalid.html.j2", status=400, headers=PRIVATE)
    names = [item.name for item in ctx.settings.lists if item.slug in found.list_slugs]
    return ctx.pages.response("confirm.html.j2", headers=PRIVATE, list_names=names)


async def confirm(request: Request) -> Response:
    ctx = web_context(request)
    token = request.path_params["token"]
    done = await run_in_threadpool(lambda: ctx.subscriptions.confirm(token, now=ctx.clock()))
    if done is None:
        return ctx.pages.response("link_invalid.html.j2", status=400, headers=PRIVATE)
    names, prefs = done
    return ctx.pages.response(
        "confirmed.html.j2",
        headers=PRIVATE,
        list_names=names,
        preferences_url=f"/preferences/{prefs}",
    )


async def preferences_page(request: Request) -> Response:
    ctx = web_context(request)
    token = request.path_params["token"]
    shown = await run_in_threadpool(lambda: ctx.subscriptions.preferences(token, now=ctx.clock()))
    if shown is None:
        return ctx.pages.response("link_invalid.html.j2", status=404, headers=PRIVATE)
    return ctx.form_page(request, "preferences.html.j2", prefs=shown, saved=False)


async def save_preferences(request: Request) -> Response:
    ctx = web_context(request)
    token = request.path_params["token"]
    form = await request.form(max_files=0, max_fields=_MAX_FIELDS * 10)
    if not ctx.csrf.valid(request, form.get(CSRF_FIELD)):
        return ctx.pages.response("expired.html.j2", status=403)
    subscribed = {_text(v, 63) for v in form.getlist("list")}
    sections = {
        item.slug: {_text(v, 100) for v in form.getlist(f"section:{item.slug}")}
        for item in ctx.settings.lists
    }
    saving = asyncio.ensure_future(
        run_in_threadpool(
            lambda: ctx.subscriptions.save_preferences(
                token, subscribed=subscribed, sections=sections, now=ctx.clock()
            )
        )
    )
    # A failure after the page was answered is read here, not left unread.
    saving.add_done_callback(lambda done: done.cancelled() or done.exception())
    try:
        shown = await asyncio.wait_for(asyncio.shield(saving), PATIENCE)
    except (TimeoutError, StoreError):
        # The database is busy (a big list being queued, say): the lists left unticked are
        # journaled, so the reader is not sent to, and the save goes on when it can.
        leaving = ctx.subscriptions.leaving(token, subscribed)
        if leaving is None:
            return ctx.pages.response("link_invalid.html.j2", status=404, headers=PRIVATE)
        await ctx.one_click.journal(leaving)
        names = [item.name for item in ctx.settings.lists if item.slug not in subscribed]
        return ctx.pages.response("preferences_pending.html.j2", headers=PRIVATE, left=names)
    if shown is None:
        return ctx.pages.response("link_invalid.html.j2", status=404, headers=PRIVATE)
    return ctx.form_page(request, "preferences.html.j2", prefs=shown, saved=True)


SIGNUP_ROUTES = [
    Route("/", signup_form, methods=["GET"]),
    Route("/subscribe", signup_form, methods=["GET"]),
    Route("/subscribe", signup, methods=["POST"]),
    Route("/confirm/{token}", confirm_page, methods=["GET"]),
    Route("/confirm/{token}", confirm, methods=["POST"]),
    Route("/preferences/{token}", preferences_page, methods=["GET"]),
    Route("/preferences/{token}", save_preferences, methods=["POST"]),
]


def _reason(exc: InvalidInputError) -> str:
    """A short message for the form: the validator's reason without the address echoed."""
    text = str(exc)
    if "is not a valid address" in text or "control characters" in text or "SMTPUTF8" in text:
        return "Please enter one valid email address."
    return text[:1].upper() + text[1:] + "."
