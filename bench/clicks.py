"""How many counted-link clicks a `digest web` process answers, and how fast, during a send.

The script:

1. makes a temp dir with a new SQLite database and secrets file, runs `digest init --seed`,
   adds `--readers` active subscribers of `daily` in one bulk transaction and makes today's
   daily edition with its deliveries queued (not timed);
2. starts Postfix's `smtp-sink` and `digest web` (uvicorn, as it is run) on loopback, and a
   `digest worker --until-idle` that sends the edition to the sink meanwhile;
3. from `--connections` keep-alive HTTP/1.1 connections of one asyncio client, GETs the
   edition's counted links (`/c/<token>/-`, aggregate tracking) `--clicks` times in all,
   timing each request from its first byte written to its last byte read;
4. prints the clicks/s, the median and p99 latency, the answers by status, how many click
   rows the database holds, and how many deliveries the worker had sent when the load ended.

Nothing is asserted; the target is 1,000 clicks/s with a p99 under 50 ms while a send runs.
As a reference from the same process, the same load against `/unsubscribe` (a static page,
no write) gives the ratio of a click to the cheapest request the app answers.

    .venv/bin/python bench/clicks.py
    .venv/bin/python bench/clicks.py --clicks 50000 --connections 32 --readers 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from send import start_sink, stop_sink
from sqlalchemy import func, select
from unsubscribes import add_readers, read_answer, wait_until_listening

from digest.config import load_settings
from digest.mail.transport import free_port
from digest.models import DeliveryState
from digest.operations.editions import click_links
from digest.operations.publisher import Publisher
from digest.store.clicks import clicks
from digest.store.schema import deliveries

ROOT = Path(__file__).resolve().parent.parent
LIST_SLUG = "daily"
AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"


async def client(
    port: int, paths: list[str], latencies: list[float], statuses: Counter[int]
) -> None:
    """GET each path in turn over one keep-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for path in paths:
        request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: {AGENT}\r\n\r\n"
        began = time.perf_counter()
        writer.write(request.encode())
        statuses[await read_answer(reader)] += 1
        latencies.append(time.perf_counter() - began)
    writer.close()


async def load(
    port: int, paths: list[str], connections: int
) -> tuple[float, list[float], Counter[int]]:
    """Every path fetched once, spread over the connections; (seconds, latencies, statuses)."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    shares = [paths[i::connections] for i in range(connections)]
    began = time.perf_counter()
    await asyncio.gather(*(client(port, share, latencies, statuses) for share in shares))
    return time.perf_counter() - began, latencies, statuses


def counts(publisher: Publisher) -> tuple[int, int]:
    """(click rows, deliveries sent) as the database holds them now."""
    with publisher.store.engine.begin() as tx:
        rows = int(tx.execute(select(func.count()).select_from(clicks)).scalar_one())
        sent = int(
            tx.execute(
                select(func.count()).where(deliveries.c.state == DeliveryState.SENT.value)
            ).scalar_one()
        )
    return rows, sent


def figures(seconds: float, latencies: list[float]) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms)."""
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / seconds, statistics.median(latencies) * 1000, cuts[98] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clicks", type=int, default=20_000)
    parser.add_argument("--readers", type=int, default=20_000, help="the send's subscribers")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="also print the row as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="digest-clicks-") as folder:
        sink_port, web_port = free_port(), free_port()
        env = {
            **os.environ,
            "DIGEST_DATABASE_URL": f"sqlite:///{Path(folder) / 'digest.db'}",
            "DIGEST_SECRETS_FILE": str(Path(folder) / "secrets.toml"),
            "DIGEST_PREVIEW_DIR": str(Path(folder) / "preview"),
            "DIGEST_SMTP__PORT": str(sink_port),
        }
        subprocess.run(
            [sys.executable, "-m", "digest", "init", "--seed"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # the seeds' deliberately bad rows
        )
        os.environ.update(env)
        settings = load_settings(ROOT / "config" / "digest.toml")
        publisher = Publisher(settings)
        add_readers(publisher, args.readers)
        result = publisher.send(LIST_SLUG, now=datetime.now(UTC), deliver=False)
        edition = result.edition
        links = click_links(settings.site, settings.list(LIST_SLUG), edition.edition_date)
        assert edition is not None and links is not None, "no edition, or tracking is off"
        targets = [links.url(article_id) for article_id in edition.article_ids]
        base = len(settings.site.base_url)
        paths = [targets[i % len(targets)][base:] for i in range(args.clicks)]
        sink = start_sink(sink_port, Path(folder) / "smtp-sink.log")
        web = subprocess.Popen(
            [sys.executable, "-m", "digest", "web", "--host", "127.0.0.1", "--port", str(web_port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the access log: a line per request
            stderr=subprocess.DEVNULL,
        )
        worker = None
        try:
            asyncio.run(wait_until_listening(web_port, web))
            reference = asyncio.run(load(web_port, ["/unsubscribe"] * 2000, args.connections))
            worker = subprocess.Popen(
                [sys.executable, "-m", "digest", "worker", "--until-idle"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            seconds, latencies, statuses = asyncio.run(load(web_port, paths, args.connections))
            rows, sent_during = counts(publisher)
            sending = worker.poll() is None
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=60)
            web.terminate()
            web.wait(timeout=30)
            stop_sink(sink)
    rate, p50, p99 = figures(seconds, latencies)
    static_rate, _, static_p99 = figures(*reference[:2])
    row = {
        "label": f"counted-link clicks, {args.clicks:,} during a send to {args.readers:,}",
        "clicks_per_s": rate,
        "p50_ms": p50,
        "p99_ms": p99,
        "ratio_to_static_page": rate / static_rate,
        "not_302": sum(n for status, n in statuses.items() if status != 302),
        "click_rows": rows,
    }
    print(
        f"{len(latencies):,} clicks over {args.connections} connections in {seconds:.2f} s:"
        f" {rate:,.0f}/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms (target 1,000/s, p99 under 50 ms)"
    )
    print(
        f"reference, a static page in the same process: {static_rate:,.0f}/s, p99"
        f" {static_p99:.1f} ms; clicks run at {rate / static_rate:.2f}x its rate"
    )
    print(
        f"answers: {dict(sorted(statuses.items()))}; click rows: {rows:,};"
        f" deliveries sent meanwhile: {sent_during:,} of {args.readers:,}"
        f"{' (the send was still running)' if sending else ' (the send had ended)'}"
    )
    if args.json:
        print("BENCH-JSON " + json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
