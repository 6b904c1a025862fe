"""How fast `digest subscribers import` takes a CSV of N readers, and how much memory it needs.

For each N the script writes a CSV of N generated readers (accented names, a few domains,
blank cells as real exports have them), makes a fresh SQLite database with `digest init --seed`
in a temp dir, and times `digest subscribers import FILE --list daily` as a user runs it (a
separate process; its wall time includes the interpreter's start). It prints rows/s and the
import process's peak RSS, so a memory that grows with N shows as a growing column.

    .venv/bin/python bench/subscriber_import.py                      # 100,000 rows
    .venv/bin/python bench/subscriber_import.py --rows 100000 1000000
    .venv/bin/python bench/subscriber_import.py --database-url postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_NAMES = ["Győri Ödön", "Kovács Anna", "", "Béla", "John Smith", "Nagy Zsófia", "Ærøskøbing Å"]
_DOMAINS = ["gmail.com", "freemail.hu", "citromail.hu", "yahoo.com", "outlook.com", "example.hu"]


def write_csv(path: Path, rows: int) -> None:
    chance = random.Random(rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["email", "name", "locale", "timezone"])
        for number in range(rows):
            out.writerow(
                [
                    f"reader.{number}@{chance.choice(_DOMAINS)}",
                    chance.choice(_NAMES),
                    chance.choice(["hu", "en", ""]),
                    chance.choice(["Europe/Budapest", ""]),
                ]
            )


def _digest(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def measure(rows: int, database_url: str | None) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of importing `rows` readers into a fresh database."""
    with tempfile.TemporaryDirectory(prefix="digest-import-") as folder:
        work = Path(folder)
        write_csv(work / "readers.csv", rows)
        env = {
            **os.environ,
            "DIGEST_DATABASE_URL": database_url or f"sqlite:///{work / 'digest.db'}",
            "DIGEST_SECRETS_FILE": str(work / "secrets.toml"),
        }
        _digest(env, "init", "--seed")
        started = time.perf_counter()
        command = ["subscribers", "import", str(work / "readers.csv"), "--list", "daily"]
        process = subprocess.Popen(
            [sys.executable, "-m", "digest", *command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"import of {rows} rows failed")
        return elapsed, usage.ru_maxrss / 1024  # this one child's peak, in KB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument(
        "--database-url", help="an empty database (one --rows value then; default: a new SQLite)"
    )
    parser.add_argument("--json", action="store_true", help="also print each row as JSON")
    args = parser.parse_args()
    print(f"{'rows':>10} {'seconds':>8} {'rows/s':>8} {'peak RSS':>9}")
    for rows in args.rows:
        elapsed, rss = measure(rows, args.database_url)
        print(f"{rows:>10,} {elapsed:>8.2f} {rows / elapsed:>8,.0f} {rss:>7.0f} MB", flush=True)
        if args.json:
            row = {"rows": rows, "seconds": elapsed, "rows_per_s": rows / elapsed, "rss_mb": rss}
            print("BENCH-JSON " + json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
