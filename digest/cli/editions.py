"""The edition commands: `digest send`, `resume`, `retry`, `preview` and `status`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from digest.cli.context import context, err, out
from digest.cli.run import counted, show_schedule, tally
from digest.errors import ConfigError, ExitCode
from digest.models import DeliveryState

if TYPE_CHECKING:
    from digest.operations.delivery import DeliveryReport
    from digest.store import EditionSummary, Store


def _moment(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(
            f"--at {value!r} is not an ISO date-time such as 2026-11-26T07:00+01:00"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def send(
    ctx: typer.Context,
    list_slug: Annotated[
        str, typer.Option("--list", "-l", help="The list's slug, as in the config.")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be sent; send and record nothing.")
    ] = False,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Test send to this one address; the ledger is left alone."),
    ] = None,
) -> None:
    """Make today's edition of a list if needed and deliver it to every active subscriber.

    Running it again sends only what is still due: nobody gets the same edition twice.

    Example: digest send --list daily
    """
    from digest.cli.progress import watched

    publisher = context(ctx).publisher
    now = datetime.now(UTC)
    if to is not None:
        reply = publisher.test_send(list_slug, to=to, now=now)
        out.print(f"test send to {to}: {reply}")
        if not reply.accepted:
            raise typer.Exit(1)
        return
    with watched(out) as watch:
        result = publisher.send_by_hand(list_slug, now=now, dry_run=dry_run, watch=watch)
    if result.nothing_new:
        out.print(
            f"{list_slug}: nothing new since the last edition; no email sent "
            "(set send_when_empty to send anyway)"
        )
        return
    edition = result.edition
    if edition is not None and (result.waiting or result.skipped):
        what = f"{list_slug}: edition #{edition.id} of {edition.edition_date}"
        if result.waiting:
            out.print(f"{what} waits for approval: digest edition approve --list {list_slug}")
        else:
            out.print(f"{what} was skipped: not approved by its deadline; nothing sent")
        return
    if result.size is not None:
        out.print(f"{list_slug}: {result.size}", markup=False)
    if dry_run:
        what = f"edition #{edition.id} of {edition.edition_date}" if edition else "a new edition"
        if result.recipients:
            out.print(
                f"{list_slug}: dry run: {what} would go to {result.recipients} active subscribers"
            )
        else:
            out.print(f"{list_slug}: dry run: nothing is due: {what} has reached everyone")
        return
    assert edition is not None
    made = "new edition" if result.created else "edition"
    print_report(
        f"{list_slug}: {made} #{edition.id} of {edition.edition_date} "
        f"({len(edition.article_ids)} articles)",
        result.report,
        edition_id=edition.id,
    )


def print_report(prefix: str, report: DeliveryReport, *, edition_id: int) -> None:
    """Print what a run did, then exit with the code a cron job can act on.

    Paused wins over a relay that went away, which wins over permanent failures: each names
    the next step, and only the first one found is the run's outcome.
    """
    out.print(f"{prefix}: {tally(report.counts)}", markup=False)
    for problem in report.problems[:10]:
        err.print(f"  {problem}", markup=False)
    failed = report.counts.get(DeliveryState.FAILED, 0)
    if report.paused:
        code, why = (
            ExitCode.PAUSED,
            f"edition #{edition_id} paused after too many permanent failures in a row; "
            f"fix the cause, then `digest resume {edition_id}`",
        )
    elif report.relay_down:
        code, why = (
            ExitCode.TRANSPORT,
            f"stopped: the relay went away ({report.relay_down}); the rest waits for the next run",
        )
    elif failed:
        code, why = (
            ExitCode.DELIVERIES_FAILED,
            f"{failed} deliveries failed permanently; "
            f"`digest retry {edition_id} --failed` sends them again once the cause is fixed",
        )
    elif report.paused_by_editor:
        code, why = (
            ExitCode.PAUSED,
            f"edition #{edition_id} was paused on the desk; the rest stays queued until it is "
            f"resumed there or with `digest resume {edition_id}`",
        )
    elif report.stopped:
        code, why = (
            ExitCode.OK,
            "stopped on request; what was in flight is recorded, the rest stays queued",
        )
    else:
        return
    err.print(f"digest: {why}", markup=False)
    if code != ExitCode.OK:
        raise typer.Exit(code)


def resume(
    ctx: typer.Context,
    edition: Annotated[
        int, typer.Argument(help="The edition's number, as `digest status` shows it.")
    ],
) -> None:
    """Restart a paused or interrupted edition where it stopped.

    Example: digest resume 12
    """
    from digest.cli.progress import watched

    with watched(out) as watch:
        report = context(ctx).publisher.resume(edition, now=datetime.now(UTC), watch=watch)
    print_report(f"edition #{edition}", report, edition_id=edition)


def retry(
    ctx: typer.Context,
    edition: Annotated[int, typer.Argument(help="The edition's number.")],
    failed: Annotated[
        bool, typer.Option("--failed", help="Queue the permanently failed deliveries again.")
    ] = False,
) -> None:
    """Send an edition's failed deliveries again, on purpose (after fixing the cause).

    Example: digest retry 12 --failed
    """
    if not failed:
        raise ConfigError("say which deliveries to retry: --failed")
    from digest.cli.progress import watched

    with watched(out) as watch:
        requeued, report = context(ctx).publisher.retry_failed(
            edition, now=datetime.now(UTC), watch=watch
        )
    print_report(f"edition #{edition}: {requeued} re-queued", report, edition_id=edition)


def preview(
    ctx: typer.Context,
    list_slug: Annotated[str, typer.Option("--list", "-l", help="The list's slug.")],
    subscriber: Annotated[
        str | None, typer.Option("--subscriber", help="Personalise for this subscriber's address.")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for the files (default: preview_dir).")
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Pretend it is this ISO date-time.")
    ] = None,
) -> None:
    """Write the exact HTML, text and .eml that `send` would deliver, and the edition's
    structure as JSON (its stories and their articles); records nothing.

    Example: digest preview --list daily --subscriber odon.gyori@example.hu --out /tmp/preview
    """
    settings = context(ctx).settings
    folder = out_dir or settings.preview_dir
    try:
        files = context(ctx).publisher.preview(
            list_slug, now=_moment(at), out_dir=folder, subscriber=subscriber
        )
    except OSError as exc:
        where = exc.filename or folder
        raise ConfigError(f"cannot write the preview to {where}: {exc.strerror or exc}") from exc
    if files.skipped_by_send:
        out.print(
            f"{list_slug}: `digest send` would skip this list now: nothing new since the last "
            "edition, and send_when_empty is off; the preview shows the empty edition",
            markup=False,
        )
    source = "the stored edition" if files.stored else "a draft (not stored)"
    out.print(f"preview of {source} for {files.recipient}: {files.size}:", markup=False)
    if files.size.over:
        err.print(f"digest: warning: {files.size.warning()}", markup=False)
    for path in (files.html, files.text, files.eml, files.json):
        out.print(f"  {path}")


def status(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many editions to show.")] = 20,
) -> None:
    """Show each list's next and last run, missed editions, and the newest editions'
    deliveries by state.

    Example: digest status --limit 5
    """
    from rich import box
    from rich.table import Table

    from digest.config.sending import signing_state
    from digest.operations.status import feed_statuses, shown_status

    # The settings and the database alone: the Publisher's imports would double the start-up.
    settings, store = context(ctx).settings, context(ctx).store
    summaries = store.editions_with_counts(limit=limit)  # first: without a database, the error
    out.print(signing_state(settings.dkim), markup=False)
    show_schedule(out, settings.lists, store, now=datetime.now(UTC))
    for feed in feed_statuses(settings.feeds.sources, store):
        out.print(f"feed {feed.line()}", markup=False, highlight=False, soft_wrap=True)
    if not summaries:
        out.print("no editions yet")
        return
    # Fits the terminal (80 columns and up): each count on a line of its own, so none is
    # ever cut, and the other columns at their full width; only the subject is shortened.
    headers = ("#", "list", "date", "status", "articles", "deliveries")
    rows = [
        (
            str(item.edition.id),
            item.edition.list_slug,
            str(item.edition.edition_date),
            str(shown_status(item.edition.status, item.counts)),
            str(len(item.edition.article_ids)),
            "\n".join(counted(item.counts)) or "-",
        )
        for item in summaries
    ]
    widths = [
        max(len(line) for cell in (name, *(row[i] for row in rows)) for line in cell.splitlines())
        for i, name in enumerate(headers)
    ]
    # box.SIMPLE: one space of padding either side of a column and a one-space divider
    # between columns, no padding at the edges; one column more for the subject.
    gaps = 3 * len(headers) + 1
    table = Table(box=box.SIMPLE, pad_edge=False)
    for name, width in zip(headers, widths, strict=True):
        table.add_column(name, no_wrap=True, min_width=width)
    table.add_column(
        "subject",
        no_wrap=True,
        overflow="ellipsis",
        max_width=max(8, out.width - sum(widths) - gaps),
    )
    for row, item in zip(rows, summaries, strict=True):
        table.add_row(*row, item.edition.subject)
    out.print(table, soft_wrap=False)
    _health_warnings(store, summaries)
    for item in summaries:
        if item.recent_errors:
            out.print(f"recent errors of edition #{item.edition.id} ({item.edition.list_slug}):")
            for line in item.recent_errors:
                out.print(f"  {line}")


def _health_warnings(store: Store, summaries: list[EditionSummary]) -> None:
    """Warn about editions whose complaints pass 0.1% or bounces 2% of delivered copies."""
    from digest.operations.stats import edition_stats

    for item in summaries:
        for line in edition_stats(store, item.edition).warnings():
            out.print(f"warning: {line}")
