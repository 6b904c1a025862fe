"""`digest articles`: import a feed, add one article, list what is stored, show the feeds.

A thin layer over `digest.operations.ingest` and the store; registered by the main command as
`commands.add_typer(articles_commands, name="articles")`.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from digest.cli.context import context
from digest.errors import ConfigError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from digest.config import FeedRules, Settings

articles_commands = typer.Typer(
    help="Import, add and list articles.", no_args_is_help=True, rich_markup_mode=None
)
# Far enough either side to mean "every stored article".
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, tzinfo=UTC)


def _rules(
    settings: Settings, source: str, *, feed: str | None, name: str | None, section: str
) -> FeedRules:
    """The configured feed named by --feed or whose URL is `source`, else rules made up for it."""
    from pydantic import ValidationError

    from digest.config import FeedRules
    from digest.intake.articles import web_url

    for configured in settings.feeds.sources:
        if configured.name == feed or (feed is None and configured.url == source):
            return configured
    if feed is not None:
        known = ", ".join(f.name for f in settings.feeds.sources) or "none configured"
        raise NotFoundError(f"unknown feed {feed!r} (known: {known})")
    made_up = urlsplit(source).hostname if web_url(source) else Path(source).stem
    prefix = name or re.sub(r"[^a-z0-9]+", "-", (made_up or "").lower()).strip("-")[:63] or "import"
    try:
        return FeedRules(name=prefix, default_section=section)
    except ValidationError as exc:
        raise InvalidInputError(
            f"--name {prefix!r} / --section {section!r}: {exc.errors()[0]['msg']}"
        ) from exc


@articles_commands.command("import")
def import_command(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="An RSS 2.0, Atom 1.0 or JSON Feed 1.1 file, or an http(s) URL.")
    ],
    *,
    feed: Annotated[
        str | None,
        typer.Option("--feed", help="Use this configured feed's id prefix, sections and rules."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Id prefix for a source not in the config (default: host or file name)."
        ),
    ] = None,
    section: Annotated[
        str, typer.Option("--section", help="Section of every item of a source not in the config.")
    ] = "News",
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="A file's relative links resolve against this URL."),
    ] = None,
) -> None:
    """Import the articles of a feed file or URL; known items are updated, not duplicated.

    A new item that names no image gets its article page's og:image ([feeds] page_images).

    Example: digest articles import https://budapestpost.example/feed.xml --feed bp-politics
    """
    from digest.operations.ingest import import_source

    settings = context(ctx).settings
    rules = _rules(settings, source, feed=feed, name=name, section=section)
    report = import_source(
        source,
        rules=rules,
        limits=settings.feeds,
        store=context(ctx).store,
        now=datetime.now(UTC),
        base_url=base_url,
    )
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(
        f"{report.feed}: {report.new} new, {report.updated} updated, {report.revised} revised, "
        f"{report.unchanged} unchanged"
    )


@articles_commands.command("add")
def add_command(
    ctx: typer.Context,
    record: Annotated[
        str | None,
        typer.Argument(
            help="The article as a JSON object; omit it or give '-' to read standard input."
        ),
    ] = None,
) -> None:
    """Add one article given as JSON, or update the stored one with the same id.

    Keys: id, title, url (required); summary, section, published_at (ISO), image_url, image_alt,
    author, lead.

    Example: digest articles add '{"id": "bp-1", "title": "Budget passed", "url": "https://budapestpost.example/a/1"}'
    """
    from digest.intake.articles import article_from_record

    text = sys.stdin.read() if record in (None, "-") else record
    try:
        data = json.loads(text or "")
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"article JSON: line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise InvalidInputError("article JSON must be an object")
    now = datetime.now(UTC)
    article = article_from_record(data, now=now)
    inserted, _ = context(ctx).store.save_articles([article], now=now, update_existing=True)
    typer.echo(f"{article.id}: {'added' if inserted else 'updated'}")


@articles_commands.command("list")
def list_command(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only articles published after this ISO date-time."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 50,
) -> None:
    """List stored articles, newest first: time (UTC), id, section and title, tab-separated.

    Example: digest articles list --since 2026-11-25T00:00+01:00
    """
    after = _EARLIEST
    if since is not None:
        try:
            after = datetime.fromisoformat(since)
        except ValueError as exc:
            raise ConfigError(
                f"--since {since!r} is not an ISO date-time such as 2026-11-25T00:00+01:00"
            ) from exc
        after = after if after.tzinfo else after.replace(tzinfo=UTC)
    found = context(ctx).store.articles_published(after=after, until=_LATEST)[:limit]
    if not found:
        typer.echo("no articles")
        return
    # Plain tab-separated lines: greppable, and feed text is never read as terminal markup.
    for article in found:
        when = f"{article.published_at:%Y-%m-%d %H:%M}"
        typer.echo("\t".join((when, article.id, article.section, article.title)))


@articles_commands.command("feeds")
def feeds_command(ctx: typer.Context) -> None:
    """List the configured feeds with their last poll (UTC), articles stored and the last
    poll's error, tab-separated.

    Example: digest articles feeds
    """
    from digest.operations.status import feed_statuses

    sources = context(ctx).settings.feeds.sources
    if not sources:
        typer.echo("no feeds configured")
        return
    for status in feed_statuses(sources, context(ctx).store):
        typer.echo(status.line())
