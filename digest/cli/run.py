"""`digest run`, and the schedule part of `digest status`: a thin layer over
`digest.service.scheduler`.

Registered by the main command as `digest run` and `digest worker`.
"""

from __future__ import annotations

import logging
import signal
import textwrap
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from digest.cli.context import context
from digest.models import Approval, DeliveryState, ListRun, RunOutcome
from digest.service.log_format import LogFormat, configure_logging

if TYPE_CHECKING:
    from digest.config import ListSettings
    from digest.store import Store

log = logging.getLogger("digest.run")
_MISSED_SHOWN = 5


def run(
    ctx: typer.Context,
    log_format: Annotated[
        LogFormat,
        typer.Option("--log-format", help="Log lines as human text or as one JSON object each."),
    ] = LogFormat.TEXT,
) -> None:
    """Run the schedule in the foreground: each list's edition at its cron time, held and
    retried deliveries as they come due, and feed polling.

    SIGTERM or Ctrl-C stops claiming, lets the messages in flight finish and exits 0. Several
    `digest run` processes on one database send each edition to each subscriber once.

    Example: digest run --log-format json
    """
    from digest.service.scheduler import serve

    configure_logging(log_format)
    with _stop_on_signals() as stop:
        serve(context(ctx).publisher, stop=stop)


def worker(
    ctx: typer.Context,
    log_format: Annotated[
        LogFormat,
        typer.Option("--log-format", help="Log lines as human text or as one JSON object each."),
    ] = LogFormat.TEXT,
    poll: Annotated[float, typer.Option(help="Seconds between looks for due deliveries.")] = 5.0,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit once nothing is due (batch jobs, tests).")
    ] = False,
) -> None:
    """Run only the delivery engine: send what is due in recent editions, make no editions.

    Start as many as the relay can take, on any number of machines sharing one PostgreSQL
    database: each claims its own rows (SKIP LOCKED), so every subscriber gets one copy.
    SIGTERM or Ctrl-C lets the messages in flight finish and exits 0.

    Example: DIGEST_DATABASE_URL=postgresql+psycopg://digest@db/digest digest worker
    """
    from digest.service.scheduler import work

    configure_logging(log_format)
    with _stop_on_signals() as stop:
        report = work(context(ctx).publisher, stop=stop, poll_seconds=poll, until_idle=until_idle)
    # The log lines went by one sweep at a time; the one who started it wants the sum.
    console = Console(highlight=False, soft_wrap=True)
    if not report.delivered and report.gave_up is None:
        console.print("worker: nothing was due", markup=False)
    for (edition, slug), counts in sorted(report.delivered.items()):
        console.print(f"worker: edition #{edition} of {slug}: {tally(counts)}", markup=False)
    if report.gave_up is not None:
        raise report.gave_up


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event that SIGTERM and SIGINT set, for the length of the block."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.warning("%s: stopping after what is in flight", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _when(moment: datetime | None, zone: tzinfo) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def counted(counts: Mapping[str, int]) -> list[str]:
    """Delivery counts in the ledger's order (queued first, skipped last), zeros left out."""
    return [f"{counts[state]} {state}" for state in DeliveryState if counts.get(state)]


def tally(counts: Mapping[str, int]) -> str:
    """The counts on one line, for a run's report."""
    return ", ".join(counted(counts)) or "nothing was due"


def _last_run(run: ListRun | None, zone: tzinfo) -> str:
    if run is None:
        return "none"
    edition = f" (edition #{run.edition_id})" if run.edition_id else ""
    if run.outcome == RunOutcome.BY_HAND:
        how = f"`digest send`, {run.detail}" if run.detail else "`digest send`"
        return f"{_when(run.slot, zone)} {how}{edition}"
    return f"{_when(run.slot, zone)} {run.outcome}{edition}"


def _deadline(settings: ListSettings) -> str:
    if settings.approval_deadline is None:
        return "no deadline"
    return f"deadline {settings.approval_deadline:%H:%M}, then {settings.on_deadline}"


def show_schedule(
    console: Console, lists: tuple[ListSettings, ...], store: Store, *, now: datetime
) -> None:
    """Print each list's next run, last run and last edition, then the latest missed editions."""
    from digest.operations.status import list_statuses, shown_status

    statuses = list_statuses(lists, store, now=now)  # read before printing: an error prints alone
    console.print("lists:")
    for item in statuses:
        settings = item.settings
        made = item.last_edition
        edition = "none"
        if made is not None:
            shown = shown_status(made.status, store.delivery_counts(made.id))
            edition = f"#{made.id} of {made.edition_date}, {shown}"
        # Three short lines a list, wrapped at the console's width: 80 columns show it all.
        for line in (
            f"  {settings.slug}: next run {_when(item.next_run, settings.zone)} "
            f"({settings.schedule}, {settings.timezone})",
            f"    last run: {_last_run(item.last_run, settings.zone)}",
            f"    last edition: {edition}",
            *(
                [f"    approval: required, {_deadline(settings)}"]
                if settings.approval is Approval.REQUIRED
                else []
            ),
        ):
            console.print(
                textwrap.fill(line, width=console.width, subsequent_indent="      "),
                markup=False,
            )
    missed = store.recent_runs(outcome=RunOutcome.MISSED, limit=_MISSED_SHOWN)
    if missed:
        zones = {item.slug: item.zone for item in lists}
        console.print("missed editions (not sent: `digest run` was down past the grace period):")
        for entry in missed:
            due = _when(entry.slot, zones.get(entry.list_slug, UTC))
            console.print(f"  {entry.list_slug}: due {due}", markup=False)
    skipped = store.skipped_editions(limit=_MISSED_SHOWN)
    if skipped:
        zones = {item.slug: item.zone for item in lists}
        console.print("missed editions (not sent: not approved by the deadline):")
        for slug, made, verdict in skipped:
            when = _when(verdict.decided_at, zones.get(slug, UTC))
            console.print(
                f"  {slug}: edition #{made.id} of {made.edition_date}, skipped {when}",
                markup=False,
            )
