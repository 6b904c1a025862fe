"""`digest stats EDITION`: an edition's health numbers and clicks by article."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from digest.cli.context import context, out


def stats(
    ctx: typer.Context,
    edition_id: Annotated[int, typer.Argument(help="The edition's number, as in digest status.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Also write the clicks by article to this CSV.")
    ] = None,
) -> None:
    """Show what happened to an edition: delivered, deferred, failed, bounces, complaints,
    unsubscribes (one-click and page), and human clicks by article (scanner and archive
    clicks apart), with rates.

    Example: digest stats 12 --json
    """
    from rich import box
    from rich.table import Table

    from digest.operations.stats import OPENS_LABEL, edition_stats, stats_csv

    app = context(ctx)
    store = app.publisher.store
    edition = store.edition_by_id(edition_id)
    opens = any(item.opens for item in app.settings.lists if item.slug == edition.list_slug)
    numbers = edition_stats(store, edition, opens=opens)
    if csv_out is not None:
        csv_out.write_text(stats_csv(numbers), encoding="utf-8")
    if as_json:
        out.print_json(json.dumps(numbers.as_json(), ensure_ascii=False))
        return
    out.print(f"edition #{edition.id} of {edition.list_slug}, {edition.edition_date}")
    health = Table(box=box.SIMPLE, pad_edge=False)
    for name in ("", "count", "rate"):
        health.add_column(name, justify="left" if not name else "right")
    rows: list[tuple[str, int, bool]] = [
        ("delivered", numbers.delivered, False),
        ("deferred", numbers.deferred, False),
        ("failed", numbers.failed, False),
        ("bounced (hard)", numbers.bounced_hard, True),
        ("bounced (soft)", numbers.bounced_soft, True),
        ("complaints", numbers.complaints, True),
        ("unsubscribes", numbers.unsubscribes, True),
        ("  by one-click", numbers.unsubscribes_one_click, True),
        ("  by page", numbers.unsubscribes_page, True),
        ("clicks", numbers.clicks, True),
        ("machine clicks (not counted)", numbers.machine_clicks, False),
        ("archive clicks (not counted)", numbers.archive_clicks, False),
    ]
    if numbers.opens is not None:
        rows.append((OPENS_LABEL, numbers.opens, True))
    for label, count, rated in rows:
        health.add_row(label, str(count), f"{numbers.rate(count):.2%}" if rated else "")
    out.print(health, soft_wrap=False)
    articles = Table(box=box.SIMPLE, pad_edge=False)
    for name in ("article", "clicks", "machine", "archive"):
        articles.add_column(name, justify="left" if name == "article" else "right")
    for item in numbers.articles:
        articles.add_row(item.title, str(item.human), str(item.machine), str(item.archive))
    out.print(articles, soft_wrap=False)
    for line in numbers.warnings():
        out.print(f"warning: {line}")
