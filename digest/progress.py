"""Following a delivery run from the command line: signals stop it cleanly, progress shows.

On a terminal a rich progress bar (sent, deferred, failed, rate, ETA); otherwise a log line
every `every` seconds, so a service's journal shows the run without flooding it.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from digest.delivery import DeliveryReport, Watch
from digest.models import DeliveryState

log = logging.getLogger("digest.progress")


def _tally(report: DeliveryReport) -> str:
    c = report.counts
    return (
        f"{c.get(DeliveryState.SENT, 0)} sent, {c.get(DeliveryState.DEFERRED, 0)} deferred, "
        f"{c.get(DeliveryState.FAILED, 0)} failed"
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
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn(
                    "{task.completed}/{task.total}  {task.fields[tally]}  {task.speed:.0f}/s"
                ),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            ) as bar:
                task = bar.add_task("sending", total=None, tally="")

                def show(report: DeliveryReport) -> None:
                    bar.update(
                        task, total=report.due or None, completed=report.done, tally=_tally(report)
                    )

                yield Watch(stop=watch_stop, progress=show)
        else:
            last = [started]

            def log_line(report: DeliveryReport) -> None:
                now = time.monotonic()
                if now - last[0] >= every:
                    last[0] = now
                    rate = report.done / max(now - started, 1e-9)
                    log.warning(
                        "%s of %s done (%s), %.0f/s", report.done, report.due, _tally(report), rate
                    )

            yield Watch(stop=watch_stop, progress=log_line)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
