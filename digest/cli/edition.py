"""`digest edition`: one edition before it goes out: its editor's note, its shape (lead,
exclusions, subject), and the approval a list with approval = "required" waits for."""

from __future__ import annotations

import getpass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from digest.cli.context import context, out
from digest.errors import ConfigError

if TYPE_CHECKING:  # the config pulls in pydantic and Jinja2, which `--help` must not load
    from digest.config import ListSettings

edition_commands = typer.Typer(
    help="One edition before it goes out: its editor's note, its shape, and approving the one "
    'a list with approval = "required" holds back.',
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
    from digest.edition.note import editor_note

    publisher = context(ctx).publisher
    chosen = _day(publisher.settings.list(list_slug), day)
    text = None if clear else editor_note(markdown).markdown
    publisher.store.set_note(list_slug, chosen, text, now=datetime.now(UTC))
    out.print(f"{list_slug} {chosen}: " + ("note removed" if clear else "note set"))


def _day(mailing_list: ListSettings, day: str | None) -> date:
    from digest.operations.editions import edition_date

    try:
        return date.fromisoformat(day) if day else edition_date(mailing_list, datetime.now(UTC))
    except ValueError as exc:
        raise ConfigError(f"--date {day!r} is not a date such as 2026-12-03") from exc


@edition_commands.command("shape")
def shape(
    ctx: typer.Context,
    *,
    list_slug: Annotated[
        str, typer.Option("--list", "-l", help="The list's slug, as in the config.")
    ],
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Leave this article id out.")
    ] = None,
    include: Annotated[
        list[str] | None, typer.Option("--include", help="Take an excluded article id back.")
    ] = None,
    pin: Annotated[
        str | None, typer.Option("--pin", help="Lead with the story holding this article id.")
    ] = None,
    unpin: Annotated[bool, typer.Option("--unpin", help="Lead as usual again.")] = False,
    subject: Annotated[
        str | None, typer.Option("--subject", help='The subject line ("": the list\'s own).')
    ] = None,
    day: Annotated[
        str | None,
        typer.Option("--date", help="The edition's date, YYYY-MM-DD (default: today's)."),
    ] = None,
) -> None:
    """Shape a list's next edition before it is made; with no change, show its shape.

    Example: digest edition shape --list daily --exclude bp-123 --pin bp-456
    """
    from digest.edition.shaping import excluded, pinned, with_subject
    from digest.operations.shaping import known_article

    publisher = context(ctx).publisher
    store = publisher.store
    chosen = _day(publisher.settings.list(list_slug), day)
    current = store.edition_shape(list_slug, chosen)
    for article in exclude or ():
        current = excluded(current, known_article(store, article))
    for article in include or ():
        current = excluded(current, article, out=False)
    if unpin or pin:
        current = pinned(current, known_article(store, pin) if pin else None)
    if subject is not None:
        current = with_subject(current, subject)
    if exclude or include or pin or unpin or subject is not None:
        store.set_shape(list_slug, chosen, current, now=datetime.now(UTC))
    out.print(f"{list_slug} {chosen}:")
    out.print(f"  lead: {current.lead or '(as usual)'}")
    out.print(f"  excluded: {', '.join(sorted(current.excluded)) or '(none)'}")
    out.print(f"  section order: {', '.join(current.section_order) or '(as configured)'}")
    out.print(f"  subject: {current.subject or '(from the list template)'}")


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
