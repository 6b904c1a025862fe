"""The desk's subscriber pages.

    GET  /desk/subscribers?q=part           search by a part of the address
    GET  /desk/subscribers/<id>             one subscriber: subscriptions with sections,
                                            bounces, recent deliveries
    POST /desk/subscribers/<id>/unsubscribe take them off a list (CSRF; field `list`)
    POST /desk/subscribers/<id>/resubscribe put them back on it, on their request (CSRF)
    GET  /desk/subscribers/import           the CSV upload form
    POST /desk/subscribers/import           import it: the CLI's line-numbered report (CSRF)

The upload may be `[desk] upload_bytes` long (BodyLimit answers 413 past it); every other
desk request keeps `[web] max_body_bytes`. All need a desk session.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from digest.errors import DigestError, NotFoundError
from digest.models import SubscriptionStatus
from digest.operations import people
from digest.store import Editor
from digest.web.context import web_context
from digest.web.desk import DESK_POLICY, signed_in
from digest.web.guard import CSRF_FIELD
from digest.web.pages import PRIVATE

UPLOAD_PATH = "/desk/subscribers/import"
_HEADERS = {**PRIVATE, "content-security-policy": DESK_POLICY}
_IMPORT_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.UNSUBSCRIBED)


def _subscriber_id(request: Request) -> int:
    value = str(request.path_params["subscriber"])
    if not value.isdigit() or len(value) > 12:
        raise NotFoundError(f"no subscriber {value!r}")
    return int(value)


def _page(request: Request, template: str, *, status: int = 200, **context: object) -> Response:
    response = web_context(request).form_page(request, template, status=status, **context)
    response.headers.update(_HEADERS)
    return response


@signed_in
async def search_page(request: Request, editor: Editor) -> Response:
    ctx = web_context(request)
    query = request.query_params.get("q", "")[:320]
    found = await run_in_threadpool(people.search, ctx.publisher.store, query)
    return _page(request, "desk/subscribers.html.j2", editor=editor, query=query, found=found)


async def _person_page(
    request: Request, editor: Editor, *, notice: str = "", status: int = 200
) -> Response:
    ctx = web_context(request)
    subscriber_id = _subscriber_id(request)
    record = await run_in_threadpool(people.person, ctx.publisher.store, subscriber_id)
    return _page(
        request,
        "desk/subscriber.html.j2",
        status=status,
        editor=editor,
        person=record,
        notice=notice,
        lists=ctx.settings.lists,
    )


@signed_in
async def person_page(request: Request, editor: Editor) -> Response:
    return await _person_page(request, editor)


async def _change_subscription(request: Request, editor: Editor, *, leave: bool) -> Response:
    """Take the subscriber off the form's `list` (`leave`) or put them back on it (CSRF)."""
    ctx = web_context(request)
    form = await request.form(max_files=0, max_fields=5)
    if not ctx.csrf.valid(request, form.get(CSRF_FIELD)):
        return ctx.pages.response("forbidden.html.j2", status=403, headers=PRIVATE)
    subscriber_id, now = _subscriber_id(request), ctx.clock()
    slug = str(form.get("list", ""))
    if slug not in {item.slug for item in ctx.settings.lists}:
        return await _person_page(request, editor, notice=f"No list {slug!r}.", status=400)
    act = people.unsubscribe if leave else people.resubscribe
    try:
        changed = await run_in_threadpool(
            lambda: act(ctx.publisher.store, subscriber_id, slug, now=now)
        )
    except NotFoundError:
        raise
    except DigestError as exc:  # never on that list
        return await _person_page(request, editor, notice=str(exc), status=409)
    if not changed:
        where = "unsubscribed from" if leave else "on"
        return await _person_page(request, editor, notice=f"Already {where} {slug}.")
    return RedirectResponse(f"/desk/subscribers/{subscriber_id}", status_code=303)


@signed_in
async def unsubscribe_submit(request: Request, editor: Editor) -> Response:
    return await _change_subscription(request, editor, leave=True)


@signed_in
async def resubscribe_submit(request: Request, editor: Editor) -> Response:
    return await _change_subscription(request, editor, leave=False)


def _import_form(
    request: Request, editor: Editor, *, lines: list[str], status: int = 200, error: str = ""
) -> Response:
    ctx = web_context(request)
    return _page(
        request,
        "desk/import.html.j2",
        status=status,
        editor=editor,
        lists=ctx.settings.lists,
        statuses=_IMPORT_STATUSES,
        lines=lines,
        error=error,
        limit_kb=ctx.settings.desk.upload_bytes // 1024,
    )


@signed_in
async def import_page(request: Request, editor: Editor) -> Response:
    return _import_form(request, editor, lines=[])


@signed_in
async def import_submit(request: Request, editor: Editor) -> Response:
    ctx = web_context(request)
    form = await request.form(max_files=1, max_fields=8)
    if not ctx.csrf.valid(request, form.get(CSRF_FIELD)):
        return ctx.pages.response("forbidden.html.j2", status=403, headers=PRIVATE)
    upload, slug = form.get("file"), str(form.get("list", ""))
    wanted = str(form.get("status", SubscriptionStatus.ACTIVE))
    if slug not in {item.slug for item in ctx.settings.lists}:
        return _import_form(request, editor, lines=[], status=400, error=f"No list {slug!r}.")
    if wanted not in _IMPORT_STATUSES:
        return _import_form(request, editor, lines=[], status=400, error="Unknown status.")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _import_form(request, editor, lines=[], status=400, error="Choose a CSV file.")
    data, name, now = await upload.read(), upload.filename[:200], ctx.clock()
    try:
        report = await run_in_threadpool(
            lambda: people.import_upload(
                ctx.publisher.store,
                data,
                list_slug=slug,
                status=SubscriptionStatus(wanted),
                now=now,
            )
        )
    except DigestError as exc:  # not UTF-8, no email column: the whole file is refused
        return _import_form(request, editor, lines=[], status=400, error=f"{name}: {exc}")
    lines = people.report_lines(report, name=name)
    return _import_form(request, editor, lines=lines, status=200)


PEOPLE_ROUTES = [
    Route("/desk/subscribers", search_page, methods=["GET"]),
    Route(UPLOAD_PATH, import_page, methods=["GET"]),
    Route(UPLOAD_PATH, import_submit, methods=["POST"]),
    Route("/desk/subscribers/{subscriber}", person_page, methods=["GET"]),
    Route("/desk/subscribers/{subscriber}/unsubscribe", unsubscribe_submit, methods=["POST"]),
    Route("/desk/subscribers/{subscriber}/resubscribe", resubscribe_submit, methods=["POST"]),
]
