"""How long a person waits for `digest` to answer: `--help`, a command's `--help`, `status`.

Each command runs `--runs` times as a fresh process (`python -m digest ...`, as the installed
`digest` script runs it) on a seeded SQLite database in a temp dir; the median and the fastest
wall times are printed, with the targets beside them (`--help` under 0.3 s, `status` under
0.6 s). The machine is shared and noisy: the fastest run is the best estimate of the cost.

    .venv/bin/python bench/cli_start.py
    .venv/bin/python bench/cli_start.py --runs 11
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (
    (("--help",), 0.3),
    (("send", "--help"), 0.3),
    (("subscribers", "import", "--help"), 0.3),
    (("status",), 0.6),
)


def timed(args: tuple[str, ...], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="also print each row as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="digest-cli-") as folder:
        env = {
            **os.environ,
            "DIGEST_DATABASE_URL": f"sqlite:///{Path(folder) / 'digest.db'}",
            "DIGEST_SECRETS_FILE": str(Path(folder) / "secrets.toml"),
        }
        timed(("init", "--seed"), env)
        print(f"{'command':<32} {'median':>7} {'fastest':>8} {'target':>7}")
        for command, target in COMMANDS:
            times = [timed(command, env) for _ in range(args.runs)]
            name = "digest " + " ".join(command)
            median, fastest = statistics.median(times), min(times)
            verdict = "ok" if fastest < target else "slow"
            print(f"{name:<32} {median:>6.2f}s {fastest:>7.2f}s {target:>6.1f}s {verdict}")
            if args.json:
                row = {"command": name, "median_s": median, "fastest_s": fastest}
                print("BENCH-JSON " + json.dumps(row | {"target_s": target}), flush=True)


if __name__ == "__main__":
    main()
