"""The desk's numbers: each recent edition's health and a bar chart of clicks by article.

    GET  /desk/stats                  the newest editions, each with its delivered and clicks
    GET  /desk/stats/<edition>        health numbers and clicks by article as an inline SVG
    GET  /desk/stats/<edition>.csv    the clicks by article as CSV (what `digest stats --csv`)

The chart is SVG drawn on the server inside the page: no script, no image fetch, so the
desk's content security policy stays as strict as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from digest.errors import NotFoundError
from digest.operations.stats import OPENS_LABEL, EditionStats, edition_stats, stats_csv
from digest.store import Editor
from digest.web.context import web_context
from digest.web.pages import PRIVATE

BAR_HEIGHT, BAR_GAP, LABEL_WIDTH, CHART_WIDTH = 22, 8, 300, 320


@dataclass(frozen=True, slots=True)
class Bar:
    """One article's bar: its label, its human clicks, and the bar's place in the SVG."""

    label: str
    clicks: int
    machine: int
    y: int
    width: int


def bars(stats: EditionStats) -> list[Bar]:
    """The chart's bars, widest for the most clicked article (0 clicks: no bar)."""
    most = max((a.human for a in stats.articles), default=0) or 1
    return [
        Bar(
            label=article.title if len(article.title) <= 48 else article.title[:47] + "…",
            clicks=article.human,
            machine=article.machine,
            y=index * (BAR_HEIGHT + BAR_GAP),
            width=round(CHART_WIDTH * article.human / most),
        )
        for index, article in enumerate(stats.articles)
    ]


def _edition_number(request: Request) -> int:
    value = str(request.path_params["edition"])
    if not value.isdigit() or len(value) > 12:
        raise NotFoundError(f"{value!r} is not an edition number")
    return int(value)


def _stats(request: Request) -> EditionStats:
    ctx = web_context(request)
    store = ctx.publisher.store
    edition = store.edition_by_id(_edition_number(request))
    opens = any(item.opens for item in ctx.settings.lists if item.slug == edition.list_slug)
    return edition_stats(store, edition, opens=opens)


async def _flushed_stats(request: Request) -> EditionStats:
    # The clicks this process answered are written first, so the desk shows them.
    await web_context(request).click_writer.flush()
    return await run_in_threadpool(_stats, request)


async def stats_index(request: Request, editor: Editor) -> Response:
    """The newest editions with their headline numbers."""
    ctx = web_context(request)
    await ctx.click_writer.flush()
    store = ctx.publisher.store
    numbers = await run_in_threadpool(
        lambda: [edition_stats(store, item.edition) for item in store.editions_with_counts()]
    )
    return _page(request, editor, "desk/stats_index.html.j2", editions=numbers)


async def stats_page(request: Request, editor: Editor) -> Response:
    """One edition's health numbers and its chart of clicks by article."""
    numbers = await _flushed_stats(request)
    return _page(
        request,
        editor,
        "desk/stats.html.j2",
        stats=numbers,
        bars=bars(numbers),
        opens_label=OPENS_LABEL,
        chart={"label": LABEL_WIDTH, "width": CHART_WIDTH, "bar": BAR_HEIGHT, "gap": BAR_GAP},
    )


async def stats_csv_file(request: Request, editor: Editor) -> Response:
    """The edition's clicks by article, as a CSV download."""
    numbers = await _flushed_stats(request)
    name = f"digest-{numbers.list_slug}-{numbers.edition_date}-clicks.csv"
    return Response(
        stats_csv(numbers),
        media_type="text/csv; charset=utf-8",
        headers={**PRIVATE, "content-disposition": f'attachment; filename="{name}"'},
    )


def _page(request: Request, editor: Editor, template: str, **context: Any) -> Response:
    # The desk's own headers (its content security policy) are added where the route is.
    return web_context(request).pages.response(template, headers=PRIVATE, editor=editor, **context)
