"""Seconds from the start of `digest send` to the relay's first accepted message, at 100,000
and (with --subscribers 1000000) 1,000,000 subscribers.

For each N, on a fresh temp SQLite database (seeded, then N generated subscribers added in one
bulk transaction, not timed) with Postfix's smtp-sink on loopback as the relay:

1. times `Publisher.send("daily")` from its call to the first result recorded as sent
   (drafting and storing the edition, the first committed queueing chunk, the first claim and
   its SMTP transaction), then stops the run (as SIGTERM would: queueing ends between chunks);
2. as the reference, in the same process, times the queueing of the whole list alone
   (`Publisher.queue` on the rest): what the first byte waited for when the whole ledger was
   queued before the first claim.

Prints one line per N: first accepted after S s, the whole queueing in Q s, and their ratio.

    .venv/bin/python bench/first_byte.py
    .venv/bin/python bench/first_byte.py --subscribers 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from send import LIST_SLUG, prepare, start_sink, stop_sink

from digest.mail.transport import free_port
from digest.models import DeliveryState
from digest.operations.recorder import DeliveryReport, Watch

PREFIX = "BENCH-JSON "


def first_byte(count: int, port: int, workdir: Path) -> dict[str, float | int | str]:
    """Time one send to its first accepted message, then the reference full queueing."""
    now = datetime.now(UTC)
    publisher, seeded, _ = prepare(workdir, count, port, now, 4)
    stop = threading.Event()
    first: list[float] = []

    def progress(report: DeliveryReport) -> None:
        if not first and report.counts.get(DeliveryState.SENT):
            first.append(time.perf_counter())
            stop.set()

    started = time.perf_counter()
    result = publisher.send(LIST_SLUG, now=now, watch=Watch(stop=stop, progress=progress))
    assert result.edition is not None and first, "nothing was accepted"
    first_s = first[0] - started
    queued_before = result.queued
    began = time.perf_counter()
    rest = publisher.queue(result.edition, now=now)
    rest_s = time.perf_counter() - began
    # The reference is the whole list: scale the rest's time by the share it was.
    total = seeded + count
    whole_s = rest_s * total / max(rest, 1)
    return {
        "label": f"first accepted at {count:,}",
        "first_accepted_s": round(first_s, 2),
        "whole_queue_s": round(whole_s, 2),
        "ratio": round(first_s / whole_s, 3) if whole_s else 0.0,
        "queued_at_first": queued_before,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[100_000])
    parser.add_argument("--json", action="store_true", help="also print BENCH-JSON lines")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="digest-first-byte-") as root:
        sink = start_sink(port, Path(root) / "smtp-sink.log")
        try:
            for count in args.subscribers:
                row = first_byte(count, port, Path(root) / str(count))
                print(
                    f"{count:>9,} subscribers: first accepted after {row['first_accepted_s']} s; "
                    f"queueing the whole list takes {row['whole_queue_s']} s "
                    f"(ratio {row['ratio']}; {row['queued_at_first']:,} queued by then)",
                    flush=True,
                )
                if args.json:
                    print(PREFIX + json.dumps(row), flush=True)
        finally:
            stop_sink(sink)
    return 0


if __name__ == "__main__":
    sys.exit(main())
