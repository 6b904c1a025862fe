"""`digest subscribers`: import, add, remove, list and export subscribers.

A thin layer over `digest.operations.subscribers`; registered by the main command as
`commands.add_typer(subscribers_commands, name="subscribers")`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from digest.cli.context import context
from digest.errors import ExitCode, InvalidInputError
from digest.models import SubscriptionStatus
from digest.rules import SUPPRESSED

if TYPE_CHECKING:
    from digest.config import Settings

subscribers_commands = typer.Typer(
    help="Import, add, remove, list and export subscribers.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_LIST = typer.Option("--list", "-l", help="The list's slug, as in the config.")
_STATUS_HELP = (
    "Status of each new subscription: active (the default: people who already confirmed), "
    "pending, or unsubscribed / bounced / complained to import a suppression list."
)


def _delimiter(value: str | None) -> str | None:
    # A tab is awkward to type in a shell, so `tab` and a literal backslash-t stand for it.
    return "\t" if value in ("tab", "\\t") else value


def _known_list(settings: Settings, slug: str | None) -> str | None:
    """The slug, if it names a configured list (else NotFoundError naming the known ones)."""
    return None if slug is None else settings.list(slug).slug


@subscribers_commands.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="CSV, UTF-8 (with or without BOM), with a header row.")
    ],
    list_slug: Annotated[str, _LIST],
    status: Annotated[
        SubscriptionStatus, typer.Option("--status", help=_STATUS_HELP)
    ] = SubscriptionStatus.ACTIVE,
    delimiter: Annotated[
        str | None,
        typer.Option(
            "--delimiter",
            help="The cell separator, e.g. ';' or tab (default: the one of , ; tab | that "
            "gives the header an email column).",
        ),
    ] = None,
) -> None:
    """Import people who opted in; each bad row is reported with its line, the rest load.

    Columns: email (required), name, locale, timezone; optionally status and list. Cells are
    separated by commas, semicolons (Excel in Hungary), tabs or bars, told apart by the header.
    Addresses merge case-insensitively; an unsubscribed or bounced address stays so. New
    sign-ups do not belong here: they confirm their address through the web app (double
    opt-in). Exits 9 when some rows were rejected (the others are loaded).

    Example: digest subscribers import readers.csv --list daily --delimiter ';'
    """
    from digest.operations.people import report_lines
    from digest.operations.subscribers import import_file

    settings = context(ctx).settings
    slug = settings.list(list_slug).slug
    report = import_file(
        context(ctx).store,
        file,
        list_slug=slug,
        status=status,
        now=_now(),
        delimiter=_delimiter(delimiter),
    )
    *problems, summary = report_lines(report, name=str(file))
    for line in problems:
        typer.echo(line, err=True)
    typer.echo(summary)
    if report.rejected:
        raise typer.Exit(ExitCode.ROWS_REJECTED)


@subscribers_commands.command("add")
def add_command(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="One address, no display name.")],
    *,
    list_slug: Annotated[str, _LIST],
    name: Annotated[str, typer.Option("--name", help="Name for the greeting.")] = "",
    timezone: Annotated[
        str, typer.Option("--timezone", help="IANA time zone, e.g. Europe/Budapest.")
    ] = "",
    locale: Annotated[str, typer.Option("--locale", help="Language tag, e.g. hu.")] = "",
    status: Annotated[
        SubscriptionStatus, typer.Option("--status", help=_STATUS_HELP)
    ] = SubscriptionStatus.ACTIVE,
) -> None:
    """Add one person who opted in to a list, or update their name, locale or time zone.

    An unsubscribed or bounced address is refused: only the reader can come back, through the
    web app's confirmation.

    Example: digest subscribers add anna@example.hu --list daily --name "Kovács Anna"
    """
    from digest.operations.subscribers import add, enrolment

    settings = context(ctx).settings
    slug = settings.list(list_slug).slug
    item = enrolment(email=email, name=name, locale=locale, timezone=timezone, status=status)
    outcome, status_now = add(context(ctx).store, item, list_slug=slug, now=_now())
    typer.echo(f"{item.email}: {outcome} ({slug}, {status_now})")


@subscribers_commands.command("remove")
def remove_command(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The subscriber's address.")],
    list_slug: Annotated[str, _LIST],
) -> None:
    """Unsubscribe an address from a list. The record stays, marked unsubscribed, so that no
    later import can bring the address back.

    Example: digest subscribers remove anna@example.hu --list daily
    """
    from digest.operations.subscribers import remove

    settings = context(ctx).settings
    slug = settings.list(list_slug).slug
    address, before = remove(context(ctx).store, email, list_slug=slug, now=_now())
    if before in SUPPRESSED:
        typer.echo(f"{address}: already {before} on {slug}")
    else:
        typer.echo(f"{address}: unsubscribed from {slug} (was {before})")


@subscribers_commands.command("list")
def list_command(
    ctx: typer.Context,
    list_slug: Annotated[
        str | None, typer.Option("--list", "-l", help="Only this list (default: every list).")
    ] = None,
    status: Annotated[
        SubscriptionStatus | None, typer.Option("--status", help="Only this status.")
    ] = None,
) -> None:
    """List subscriptions: address, list, status, soft bounces in a row and name, tab-separated.

    Example: digest subscribers list --list daily --status bounced
    """
    settings = context(ctx).settings
    rows = context(ctx).store.subscription_rows(
        list_slug=_known_list(settings, list_slug), status=status
    )
    shown = 0
    for row in rows:
        fields = (row.email, row.list_slug, row.status, str(row.soft_bounces), row.name)
        typer.echo("\t".join(fields))
        shown += 1
    if not shown:
        typer.echo("no subscribers")


@subscribers_commands.command("export")
def export_command(
    ctx: typer.Context,
    list_slug: Annotated[
        str | None, typer.Option("--list", "-l", help="Only this list (default: every list).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file (default: standard output).")
    ] = None,
    status: Annotated[
        SubscriptionStatus | None, typer.Option("--status", help="Only this status.")
    ] = None,
) -> None:
    """Export subscriptions as CSV (email, name, locale, timezone, list, status), UTF-8.

    The file imports back as it is. Cells that a spreadsheet would run as a formula get a
    leading apostrophe, which the import removes.

    Example: digest subscribers export --list daily --out daily.csv
    """
    from digest.operations.subscribers import export_csv

    settings = context(ctx).settings
    store, slug = context(ctx).store, _known_list(settings, list_slug)
    if out is None:
        export_csv(store, sys.stdout, list_slug=slug, status=status)
        return
    try:
        with out.open("w", encoding="utf-8", newline="") as handle:
            count = export_csv(store, handle, list_slug=slug, status=status)
    except OSError as exc:
        raise InvalidInputError(f"{out}: cannot write: {exc.strerror or exc}") from exc
    typer.echo(f"{out}: {count} subscriptions")


def _now() -> datetime:
    return datetime.now(UTC)
