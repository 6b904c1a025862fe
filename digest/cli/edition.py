"""`digest edition`: one edition before it goes out: its editor's note, and the approval a
list with approval = "required" waits for."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated

import typer

from digest.cli.context import context, out
from digest.errors import ConfigError

edition_commands = typer.Typer(
    help="One edition before it goes out: its editor's note, and approving the one a list "
    'with approval = "required" holds back.',
    no_args_is_help=True,
    rich_markup_mode=None,
)


@edition_commands.command("note")
def note(
    ctx: typer.Context,
    list_slug: Annotated[
        str, typer.Option("--list", "-l", help="The list's slug, as in the config.")
    ],
    markdown: Annotated[
        str, typer.Argument(help="The note, in Markdown (raw HTML is dropped).")
    ] = "",
    day: Annotated[
        str | None,
        typer.Option("--date", help="The edition's date, YYYY-MM-DD (default: today's)."),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the note.")] = False,
) -> None:
    """Set the editor's note shown under the greeting of a list's next edition.

    Example: digest edition note --list daily "Our election coverage starts *today*."
    """
    from datetime import date

    from digest.edition.note import editor_note
    from digest.operations.editions import edition_date

    publisher = context(ctx).publisher
    mailing_list = publisher.settings.list(list_slug)
    try:
        chosen = date.fromisoformat(day) if day else edition_date(mailing_list, datetime.now(UTC))
    except ValueError as exc:
        raise ConfigError(f"--date {day!r} is not a date such as 2026-12-03") from exc
    text = None if clear else editor_note(markdown).markdown
    publisher.store.set_note(list_slug, chosen, text, now=datetime.now(UTC))
    out.print(f"{list_slug} {chosen}: " + ("note removed" if clear else "note set"))


@edition_commands.command()
def approve(
    ctx: typer.Context,
    list_slug: Annotated[
        str, typer.Option("--list", "-l", help="The list's slug, as in the config.")
    ],
    by: Annotated[
        str | None,
        typer.Option("--by", help="Who approves, as recorded (default: the login name)."),
    ] = None,
) -> None:
    """Approve the list's edition waiting for approval and deliver it now.

    Example: digest edition approve --list daily
    """
    from digest.cli.editions import print_report
    from digest.cli.progress import watched
    from digest.operations.approval import approve as approve_edition

    publisher = context(ctx).publisher
    now = datetime.now(UTC)
    edition = approve_edition(publisher, list_slug, editor=by or getpass.getuser(), now=now)
    with watched(out) as watch:
        report = publisher.deliver(edition, now=now, watch=watch)
    print_report(
        f"{list_slug}: approved edition #{edition.id} of {edition.edition_date}",
        report,
        edition_id=edition.id,
    )
