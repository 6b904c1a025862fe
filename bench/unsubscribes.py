"""How many RFC 8058 one-click unsubscribes a `digest web` process answers, and how fast.

A mailbox provider posts one-click unsubscribes for many readers from a few servers, so the
load here comes from one client address. The script:

1. makes a temp dir with a new SQLite database and secrets file, runs `digest init --seed`
   and adds `--readers` active subscribers of `daily` in one bulk transaction (not timed);
2. starts `digest web` (uvicorn, as it is run) on a free loopback port;
3. from `--connections` keep-alive HTTP/1.1 connections of one asyncio client, POSTs
   `List-Unsubscribe=One-Click` to each reader's genuine `/u/daily/<token>` once, timing each
   request from its first byte written to its last byte read;
4. meanwhile (unless `--sending 0`) a `digest worker --until-idle` sends the day's edition to
   `--sending` more subscribers (and the readers not yet gone) through Postfix's smtp-sink, so
   the POSTs' writes compete with the sender's for SQLite's one write lock;
5. prints the POSTs/s over the whole run, the median and p99 latency, the answers by status,
   how many of the readers the database then shows unsubscribed, and how many deliveries the
   worker had sent when the load ended.

Nothing is asserted; the target is 1,000 POSTs/s with a p99 under 100 ms while a send runs.

    .venv/bin/python bench/unsubscribes.py
    .venv/bin/python bench/unsubscribes.py --readers 50000 --connections 32 --sending 0
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
from typing import IO

from send import start_sink, stop_sink
from sqlalchemy import func, insert, select

from digest.config import load_settings
from digest.edition.tokens import unsubscribe_token
from digest.mail.transport import free_port
from digest.models import DeliveryState, SubscriptionStatus
from digest.operations.publisher import Publisher
from digest.store.schema import deliveries, lists, subscribers, subscriptions

ROOT = Path(__file__).resolve().parent.parent
LIST_SLUG = "daily"
BODY = b"List-Unsubscribe=One-Click"
START_TIMEOUT = 30.0


def add_readers(publisher: Publisher, count: int) -> list[int]:
    """`count` active subscribers of the list in one transaction; their ids."""
    now = datetime.now(UTC)
    with publisher.store.engine.begin() as tx:
        list_id = tx.execute(select(lists.c.id).where(lists.c.slug == LIST_SLUG)).scalar_one()
        first = int(tx.execute(select(func.coalesce(func.max(subscribers.c.id), 0))).scalar_one())
        ids = list(range(first + 1, first + 1 + count))
        tx.execute(
            insert(subscribers),
            [
                {
                    "id": i,
                    "email": f"reader{i}@example.com",
                    "email_key": f"reader{i}@example.com",
                    "name": "",
                    "locale": "en",
                    "timezone": "",
                    "created_at": now,
                }
                for i in ids
            ],
        )
        tx.execute(
            insert(subscriptions),
            [
                {
                    "subscriber_id": i,
                    "list_id": list_id,
                    "status": SubscriptionStatus.ACTIVE.value,
                    "sections": None,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in ids
            ],
        )
    return ids


def seeded_install(
    folder: Path, sink_port: int, config: Path = ROOT / "config" / "digest.toml"
) -> tuple[dict[str, str], Publisher]:
    """A fresh seeded install in `folder` (SQLite, secrets file, previews) whose mail goes to
    `sink_port`: the environment its `digest` commands run in, and a Publisher on it."""
    env = {
        **os.environ,
        "DIGEST_CONFIG": str(config),
        "DIGEST_DATABASE_URL": f"sqlite:///{folder / 'digest.db'}",
        "DIGEST_SECRETS_FILE": str(folder / "secrets.toml"),
        "DIGEST_PREVIEW_DIR": str(folder / "preview"),
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
    return env, Publisher(load_settings(config))


def start_digest(
    env: dict[str, str], *args: str, stderr: int | IO[bytes] = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """`digest ARGS...` (`web`, `worker`) as it is run; its output (the access log: a line
    per request) is not kept."""
    return subprocess.Popen(
        [sys.executable, "-m", "digest", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


def delivered(publisher: Publisher) -> tuple[int, int]:
    """How many deliveries the database shows sent, and skipped (their reader had left)."""
    with publisher.store.engine.begin() as tx:
        rows = tx.execute(
            select(deliveries.c.state, func.count())
            .where(deliveries.c.state.in_((DeliveryState.SENT, DeliveryState.SKIPPED)))
            .group_by(deliveries.c.state)
        ).all()
    counts = {str(state): int(count) for state, count in rows}
    return counts.get(DeliveryState.SENT, 0), counts.get(DeliveryState.SKIPPED, 0)


def unsubscribed(publisher: Publisher, ids: list[int]) -> int:
    """How many of `ids` the database shows unsubscribed from the list."""
    with publisher.store.engine.begin() as tx:
        list_id = tx.execute(select(lists.c.id).where(lists.c.slug == LIST_SLUG)).scalar_one()
        return int(
            tx.execute(
                select(func.count()).where(
                    subscriptions.c.list_id == list_id,
                    subscriptions.c.subscriber_id.between(ids[0], ids[-1]),
                    subscriptions.c.status == SubscriptionStatus.UNSUBSCRIBED.value,
                )
            ).scalar_one()
        )


async def wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    """Until `digest web` answers a request (its socket listens before the app is ready)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"digest web exited with {process.returncode}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)  # not bound yet: nothing to wait on but time
            continue
        writer.write(b"GET /unsubscribe HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        await reader.read()
        writer.close()
        return
    raise SystemExit("digest web did not start")


async def read_answer(reader: asyncio.StreamReader) -> int:
    """One HTTP/1.1 answer with a Content-Length body; its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    await reader.readexactly(length)
    return int(lines[0].split(" ", 2)[1])


async def client(
    port: int, paths: list[str], latencies: list[float], statuses: Counter[int]
) -> None:
    """POST to each path in turn over one keep-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for path in paths:
        request = (
            f"POST {path} HTTP/1.1\r\nHost: bench\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(BODY)}\r\n\r\n"
        ).encode() + BODY
        began = time.perf_counter()
        writer.write(request)
        statuses[await read_answer(reader)] += 1
        latencies.append(time.perf_counter() - began)
    writer.close()


async def load(
    port: int, paths: list[str], connections: int
) -> tuple[float, list[float], Counter[int]]:
    """Every path POSTed once, spread over the connections; (seconds, latencies, statuses)."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    shares = [paths[i::connections] for i in range(connections)]
    began = time.perf_counter()
    await asyncio.gather(*(client(port, share, latencies, statuses) for share in shares))
    return time.perf_counter() - began, latencies, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--readers", type=int, default=20_000, help="POSTs, one per reader")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--sending", type=int, default=20_000, help="more subscribers sent to meanwhile (0: none)"
    )
    parser.add_argument("--json", action="store_true", help="also print the row as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="digest-unsub-") as folder:
        sink_port = free_port()
        env, publisher = seeded_install(Path(folder), sink_port)
        settings = publisher.settings
        ids = add_readers(publisher, args.readers + args.sending)[: args.readers]
        if args.sending:
            publisher.send(LIST_SLUG, now=datetime.now(UTC), deliver=False)  # queued only
        site = settings.site
        secret = site.unsubscribe_secret.get_secret_value().encode()
        paths = [
            f"/u/{LIST_SLUG}/"
            + unsubscribe_token(
                secret=secret, key_id=site.unsubscribe_key_id, subscriber_id=i, list_slug=LIST_SLUG
            )
            for i in ids
        ]
        port = free_port()
        web = start_digest(env, "web", "--host", "127.0.0.1", "--port", str(port))
        sink = start_sink(sink_port, Path(folder) / "smtp-sink.log")
        worker = None
        try:
            asyncio.run(wait_until_listening(port, web))
            if args.sending:
                worker = start_digest(env, "worker", "--until-idle")
            seconds, latencies, statuses = asyncio.run(load(port, paths, args.connections))
            sent_during, skipped_during = delivered(publisher)
            sending = worker is not None and worker.poll() is None
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=60)
            web.terminate()
            web.wait(timeout=30)
            stop_sink(sink)
        done = unsubscribed(publisher, ids)
    cuts = statistics.quantiles(latencies, n=100)
    row = {
        "label": f"one-click unsubscribes, {args.readers:,} from one IP"
        + (f", during a send to {args.sending:,}" if args.sending else ""),
        "posts_per_s": len(latencies) / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": cuts[98] * 1000,
        "refused": sum(n for status, n in statuses.items() if status != 200),
        "unsubscribed": done,
    }
    print(
        f"{len(latencies):,} POSTs over {args.connections} connections in {seconds:.2f} s:"
        f" {row['posts_per_s']:,.0f}/s, p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms"
        " (target 1,000/s, p99 under 100 ms)"
    )
    print(f"answers: {dict(sorted(statuses.items()))}; unsubscribed: {done:,} of {len(ids):,}")
    if args.sending:
        print(
            f"deliveries meanwhile: {sent_during:,} sent, {skipped_during:,} skipped (left)"
            f"{' (the send was still running)' if sending else ' (the send had ended)'}"
        )
    if args.json:
        print("BENCH-JSON " + json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
