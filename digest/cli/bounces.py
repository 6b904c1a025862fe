"""`digest bounces PATH`: apply bounce reports and complaints, a thin layer over
`digest.operations.bounces`.

Registered by the main command as `commands.command("bounces")(bounces)`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from digest.cli.context import context


def bounces(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(help="A maildir, an mbox file, a folder of .eml files or one .eml file."),
    ],
) -> None:
    """Apply bounce reports (RFC 3464 and plain-text ones) and spam complaints (ARF, RFC 5965)
    to the subscribers they name.

    Hard bounces suppress the subscriber on every list; soft ones count, and
    [bounces] soft_bounce_limit in a row suppress; policy bounces (5.7.x) suppress nobody and
    are printed on standard error, because the receiver refused us, not the reader. A
    complaint marks the subscriber complained on every list; one that names nobody through
    our VERP address, Message-ID or unsubscribe token is printed and applied to nobody.
    Reading the same mailbox again applies nothing twice.

    Example: digest bounces /var/mail/bounces/Maildir
    """
    from digest.operations.bounces import apply_reports

    settings = context(ctx).settings
    store = context(ctx).store
    limit = settings.bounces.soft_bounce_limit
    summary = apply_reports(
        store,
        path,
        secrets=settings.site.unsubscribe_secrets(),
        soft_limit=limit,
        now=datetime.now(UTC),
    )
    for line in summary.changes:
        typer.echo(line)
    for line in summary.forged:
        typer.echo(f"ignored: {line}", err=True)
    for line in summary.unreadable:
        typer.echo(f"unreadable: {line}", err=True)
    for line in summary.policy_lines:
        typer.echo(f"POLICY BOUNCE {line}", err=True)
    if summary.policy_lines:
        typer.echo(
            f"{len(summary.policy_lines)} policy bounces: receivers refused our mail "
            "(authentication or reputation); nobody was unsubscribed. Check SPF, DKIM and "
            "DMARC for the From domain and the sending IP's reputation.",
            err=True,
        )
    typer.echo(summary.summary())
