"""The desk while an edition sends, and after: live counts, pause/resume/retry, history.

    GET  /desk/editions                   history: per edition sent, failed, deferred,
                                          bounced, complained and unsubscribed
    GET  /desk/editions/<id>              the live page; /desk/live.js polls the JSON below
    GET  /desk/editions/<id>/live.json    counts by ledger state, rate, ETA, recent refusals
    GET  /desk/live.js                    the live page's polling script (CSP: script 'self')
    POST /desk/editions/<id>/pause        the scheduler stops sending it (CSRF)
    POST /desk/editions/<id>/resume       the scheduler sends it again (CSRF)
    POST /desk/editions/<id>/retry        failed deliveries are queued again (CSRF)

All of them need a desk session (see `digest.web.desk.signed_in`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from digest.errors import DigestError, NotFoundError
from digest.operations import watching
from digest.store import Editor, Store
from digest.web.context import web_context
from digest.web.desk import DESK_POLICY, signed_in
from digest.web.guard import CSRF_FIELD
from digest.web.pages import PRIVATE

# The live page runs one script of our own and reads our own JSON; nothing else.
LIVE_POLICY = DESK_POLICY.replace("default-src 'none'", "default-src 'none'; script-src 'self'")
LIVE_POLICY += "; connect-src 'self'"
_POLL_MS = 1000


def _edition_id(request: Request) -> int:
    value = str(request.path_params["edition"])
    if not value.isdigit() or len(value) > 12:
        raise NotFoundError(f"no edition {value!r}")
    return int(value)


@signed_in
async def history_page(request: Request, editor: Editor) -> Response:
    ctx = web_context(request)
    rows = await run_in_threadpool(watching.history, ctx.publisher.store)
    response = ctx.form_page(request, "desk/history.html.j2", editor=editor, editions=rows)
    response.headers.update({**PRIVATE, "content-security-policy": DESK_POLICY})
    return response


async def _live_page(
    request: Request, editor: Editor, *, notice: str = "", status: int = 200
) -> Response:
    ctx = web_context(request)
    edition_id, now = _edition_id(request), ctx.clock()
    view = await run_in_threadpool(
        lambda: watching.live_view(ctx.publisher.store, edition_id, now=now)
    )
    response = ctx.form_page(
        request,
        "desk/live.html.j2",
        status=status,
        editor=editor,
        view=view,
        notice=notice,
        poll_ms=_POLL_MS,
    )
    response.headers.update({**PRIVATE, "content-security-policy": LIVE_POLICY})
    return response


@signed_in
async def live_page(request: Request, editor: Editor) -> Response:
    return await _live_page(request, editor)


@signed_in
async def live_json(request: Request, editor: Editor) -> Response:
    ctx = web_context(request)
    edition_id, now = _edition_id(request), ctx.clock()
    view = await run_in_threadpool(
        lambda: watching.live_view(ctx.publisher.store, edition_id, now=now)
    )
    return JSONResponse(view.as_json(), headers=PRIVATE)


@signed_in
async def live_script(request: Request, editor: Editor) -> Response:
    ctx = web_context(request)
    return Response(
        ctx.pages.render("desk/live.js.j2"),
        media_type="text/javascript",
        headers=PRIVATE,
    )


async def _change_edition(
    request: Request, editor: Editor, change: Callable[[Store, int, datetime], object]
) -> Response:
    """Apply `change` to the edition after checking the form's CSRF; back to the live page."""
    ctx = web_context(request)
    form = await request.form(max_files=0, max_fields=5)
    if not ctx.csrf.valid(request, form.get(CSRF_FIELD)):
        return ctx.pages.response("forbidden.html.j2", status=403, headers=PRIVATE)
    edition_id, now, store = _edition_id(request), ctx.clock(), ctx.publisher.store
    try:
        await run_in_threadpool(change, store, edition_id, now)
    except NotFoundError:
        raise
    except DigestError as exc:  # e.g. resuming an edition that is not paused
        return await _live_page(request, editor, notice=str(exc), status=409)
    return RedirectResponse(f"/desk/editions/{edition_id}", status_code=303)


@signed_in
async def pause_submit(request: Request, editor: Editor) -> Response:
    return await _change_edition(request, editor, lambda store, i, now: watching.pause(store, i))


@signed_in
async def resume_submit(request: Request, editor: Editor) -> Response:
    return await _change_edition(request, editor, lambda store, i, now: watching.resume(store, i))


@signed_in
async def retry_submit(request: Request, editor: Editor) -> Response:
    return await _change_edition(
        request, editor, lambda store, i, now: watching.retry_failed(store, i, now=now)
    )


SENDING_ROUTES = [
    Route("/desk/editions", history_page, methods=["GET"]),
    Route("/desk/editions/{edition}", live_page, methods=["GET"]),
    Route("/desk/editions/{edition}/live.json", live_json, methods=["GET"]),
    Route("/desk/live.js", live_script, methods=["GET"]),
    Route("/desk/editions/{edition}/pause", pause_submit, methods=["POST"]),
    Route("/desk/editions/{edition}/resume", resume_submit, methods=["POST"]),
    Route("/desk/editions/{edition}/retry", retry_submit, methods=["POST"]),
]
