"""`digest edition approve`: let a list's waiting edition (approval = "required") go out."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated

import typer

from digest.cli.context import context, out

edition_commands = typer.Typer(
    help='One edition: approve the one a list with approval = "required" holds back.',
    no_args_is_help=True,
    rich_markup_mode=None,
)


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
