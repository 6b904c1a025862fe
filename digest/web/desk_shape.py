"""Shaping today's draft from the desk: one POST per change, then the Today page again.

    POST /desk/shape/<list>   action = lead | unpin | exclude | include | up | down |
                              subject | note, with `article`, `section`, `subject` or `note`

Each change is kept for the list's edition date and applies to the draft only: once the
edition is made, a change is refused with the reason. `digest run` and the scheduler make
the edition from the shaped draft. The preview's light/dark switch is here too.
"""

from __future__ import annotations

import re
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.config import Settings
from digest.edition.note import NOTE_LIMIT
from digest.edition.render import Renderer
from digest.edition.shaping import SUBJECT_LIMIT, excluded, moved, pinned, with_subject
from digest.errors import DigestError, InvalidInputError
from digest.models import EditionShape
from digest.operations.shaping import (
    Change,
    draft_selection,
    known_article,
    reshape,
    set_today_note,
)
from digest.store import Editor, Store
from digest.web.context import web_context
from digest.web.guard import CSRF_FIELD
from digest.web.pages import PRIVATE

SCHEMES = ("light", "dark")
_DARK_RULES = re.compile(r"@media \(prefers-color-scheme: dark\)")


def scheme_of(request: Request) -> str:
    """The preview's colour scheme asked for (?scheme=light or dark), else "" (as sent)."""
    scheme = request.query_params.get("scheme", "")
    return scheme if scheme in SCHEMES else ""


def forced_scheme(html: str, scheme: str) -> str:
    """The draft's HTML showing its light or dark colours whatever the editor's browser
    prefers: its dark-mode rules then apply always, or never (any other value: as sent)."""
    if scheme == "dark":
        return _DARK_RULES.sub("@media all", html)
    if scheme == "light":
        return _DARK_RULES.sub("@media not all", html)
    return html


def _change(
    settings: Settings,
    store: Store,
    renderer: Renderer,
    list_slug: str,
    fields: dict[str, str],
    *,
    now: datetime,
) -> Change:
    """The shape change a desk form asks for (checked before anything is kept)."""
    action, article = fields["action"], fields["article"]
    if action == "lead":
        chosen = known_article(store, article)
        return lambda shape: pinned(shape, chosen)
    if action == "unpin":
        return lambda shape: pinned(shape, None)
    if action == "exclude":
        chosen = known_article(store, article)
        return lambda shape: excluded(shape, chosen)
    if action == "include":
        return lambda shape: excluded(shape, article, out=False)
    if action in {"up", "down"}:
        shown = [
            g.name for g in draft_selection(settings, store, renderer, list_slug, now=now).sections
        ]
        step = -1 if action == "up" else 1
        return lambda shape: moved(shape, shown, fields["section"], step)
    if action == "subject":
        subject = fields["subject"]
        with_subject(EditionShape(), subject)  # refuse a bad subject before reading the shape
        return lambda shape: with_subject(shape, subject)
    raise InvalidInputError(f"unknown change {action!r}")


async def shape_submit(request: Request, editor: Editor) -> Response:
    """Apply one change to the list's draft and show the Today page with the new draft."""
    from digest.web import desk  # desk lists this module's routes, so it is imported late

    ctx = web_context(request)
    slug = desk._list_slug(request)
    form = await request.form(max_files=0, max_fields=10)
    if not ctx.csrf.valid(request, form.get(CSRF_FIELD)):
        return ctx.pages.response("forbidden.html.j2", status=403, headers=PRIVATE)
    fields = {
        "action": str(form.get("action", ""))[:20],
        "article": str(form.get("article", ""))[:255],
        "section": str(form.get("section", ""))[:100],
        # One more than fits, so an overlong value is refused rather than cut.
        "subject": str(form.get("subject", ""))[: SUBJECT_LIMIT + 1],
        "note": str(form.get("note", ""))[: NOTE_LIMIT + 1],
    }
    now = ctx.clock()
    settings, store, renderer = ctx.settings, ctx.publisher.store, ctx.publisher.renderer

    def apply() -> None:
        if fields["action"] == "note":
            set_today_note(settings, store, slug, fields["note"], now=now)
        else:
            change = _change(settings, store, renderer, slug, fields, now=now)
            reshape(settings, store, slug, change, now=now)

    try:
        await run_in_threadpool(apply)
    except DigestError as exc:  # a made edition, a bad subject or note, an unknown article
        name = settings.list(slug).name
        return await desk._today_page(request, editor, notice=f"{name}: {exc}", status=400)
    return RedirectResponse(f"/desk#list-{slug}", status_code=303)
