"""Following a delivery run from the command line: signals stop it cleanly, progress shows.

On a terminal a rich progress bar (done of due, sent, deferred, failed, rate, ETA); otherwise
an INFO log line at the first result and then every `every` seconds, so a service's journal
shows the run without flooding it. Every column renders whatever the task holds: a rate or a
total that is not known yet shows as "–", never as a format error.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from digest.models import DeliveryState
from digest.operations.delivery import DeliveryReport, Watch

log = logging.getLogger("digest.cli.progress")
UNKNOWN = "–"


def _tally(report: DeliveryReport) -> str:
    c = report.counts
    return (
        f"{c.get(DeliveryState.SENT, 0)} sent, {c.get(DeliveryState.DEFERRED, 0)} deferred, "
        f"{c.get(DeliveryState.FAILED, 0)} failed"
    )


class RateColumn(ProgressColumn):
    """Messages a second, or "–/s" until rich has seen enough results to tell."""

    def render(self, task: Task) -> Text:
        """The task's speed as a whole number per second."""
        speed = task.speed
        return Text(f"{UNKNOWN if speed is None else f'{speed:.0f}'}/s")


def progress_bar(console: Console) -> Progress:
    """The bar `watched` draws on a terminal; transient, so the final report stands alone."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[tally]}", markup=False),
        RateColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@contextmanager
def watched(console: Console, *, every: float = 10.0) -> Iterator[Watch]:
    """A Watch whose stop is set by SIGTERM or SIGINT, showing progress while the run lasts."""
    watch_stop = Watch().stop

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.warning("%s: finishing what is in flight, then stopping", signal.Signals(signum).name)
        watch_stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    started = time.monotonic()
    try:
        if console.is_terminal:
            with progress_bar(console) as bar:
                task = bar.add_task("sending", total=None, tally="")

                def show(report: DeliveryReport) -> None:
                    bar.update(
                        task, total=report.due or None, completed=report.done, tally=_tally(report)
                    )

                yield Watch(stop=watch_stop, progress=show)
        else:
            last: list[float | None] = [None]

            def log_line(report: DeliveryReport) -> None:
                now = time.monotonic()
                if report.done and (last[0] is None or now - last[0] >= every):
                    last[0] = now
                    rate = report.done / max(now - started, 1e-9)
                    log.info(
                        "%s of %s done (%s), %.0f/s", report.done, report.due, _tally(report), rate
                    )

            yield Watch(stop=watch_stop, progress=log_line)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
