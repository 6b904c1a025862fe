"""Every figure a user waits on, in one table: `make bench` runs this.

It runs the other bench scripts one after the other (each in its own process, on a fresh
temp database, against Postfix's smtp-sink where mail is sent) and prints their headline
figures together:

- sender: msg/s and the ratio to Postfix's smtp-source at 100,000 subscribers (and 1,000,000
  with --full), peak RSS, seconds from `send` to the relay's first accepted message;
- CLI: `digest --help`, a command's `--help`, `digest status` (fastest of 7 runs);
- subscriber import: rows/s and peak RSS at 100,000 rows (and 1,000,000 with --full);
- first byte: seconds from `send` to the first accepted message, queueing in chunks beside
  delivery, against queueing the whole list (bench/first_byte.py);
- whatever other bench script is present and speaks the same `--json` (section variants,
  DKIM-signed against unsigned sending, one-click unsubscribes and counted-link clicks
  against `digest web`).

Each script also runs on its own, with more options; see its docstring. The machine is shared
and noisy: compare ratios from one run, not absolute times across runs.

    .venv/bin/python bench/table.py
    .venv/bin/python bench/table.py --full
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PREFIX = "BENCH-JSON "
Rows = list[dict[str, Any]]


def figures(script: str, *args: str) -> Rows:
    """Run one bench script with --json; the rows it printed (it shows its own output too)."""
    print(f"== {script} {' '.join(args)}", flush=True)
    process = subprocess.run(
        [sys.executable, str(HERE / script), *args, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if process.returncode != 0:
        print(process.stdout[-2000:], process.stderr[-2000:], sep="\n")
        print(f"!!! {script} failed (exit {process.returncode})", flush=True)
    return [json.loads(line[len(PREFIX) :]) for line in process.stdout.splitlines()
            if line.startswith(PREFIX)]  # fmt: skip


def _sender(row: dict[str, Any]) -> list[tuple[str, str]]:
    n = f"{row['subscribers']:,}"
    ratio = f"{row['ratio']:.2f}" if row.get("ratio") else "n/a"
    rates = f"{row['msg_per_s']:,.0f} ({row['source_msg_per_s'] or 0:,.0f})"
    return [
        (f"send {n}: msg/s (smtp-source)", rates),
        (f"send {n}: ratio to smtp-source", ratio),
        (f"send {n}: peak RSS", f"{row['peak_rss_mb']:.0f} MB"),
        (f"send {n}: first message accepted after", f"{row['first_accepted_s']:.2f} s"),
    ]  # fmt: skip


def _cli(row: dict[str, Any]) -> list[tuple[str, str]]:
    return [(row["command"], f"{row['fastest_s']:.2f} s (target {row['target_s']:g} s)")]


def _imported(row: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f"import {row['rows']:,} rows", f"{row['rows_per_s']:,.0f} rows/s, {row['rss_mb']:.0f} MB")
    ]


def _generic(row: dict[str, Any]) -> list[tuple[str, str]]:
    label = str(row.pop("label", "figure"))
    return [(label, ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in row.items()))]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--full", action="store_true", help="also 1,000,000 subscribers/rows")
    args = parser.parse_args()
    big = ["100000", "1000000"] if args.full else ["100000"]
    plan: list[tuple[str, list[str], Callable[[dict[str, Any]], list[tuple[str, str]]]]] = [
        ("send.py", ["--subscribers", *big], _sender),
        ("cli_start.py", [], _cli),
        ("subscriber_import.py", ["--rows", *big], _imported),
    ]
    plan.append(("first_byte.py", ["--subscribers", *big], _generic))
    for extra in ("variants.py", "signing.py", "unsubscribes.py", "clicks.py"):
        if (HERE / extra).exists():
            plan.append((extra, [], _generic))
    table: list[tuple[str, str]] = []
    for script, script_args, shape in plan:
        for row in figures(script, *script_args):
            table.extend(shape(row))
    width = max((len(name) for name, _ in table), default=10)
    print()
    print(f"{'figure':<{width}}  value")
    print(f"{'-' * width}  -----")
    for name, value in table:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
