"""Messages per second with 1, 2 and 4 `digest worker` processes on one database.

For each worker count W, on a fresh database (PostgreSQL: a new database on the server of
`--database-url`; SQLite: a new file): seed, add N generated subscribers, make and queue the
daily edition with `Publisher.send(deliver=False)` (not timed), then start W `digest worker
--until-idle` processes against Postfix's smtp-sink and time them until all have exited. In
the same run Postfix's smtp-source sends as many messages (at most 100,000) of the same size
over as many sessions (W x connections) to the same sink. One row per W: our messages/s,
smtp-source's, the ratio, and the ledger's counts. Nothing is asserted.

Run (Postfix and a PostgreSQL server needed):

    .venv/bin/python bench/workers.py --database-url postgresql+psycopg://digest:digest@127.0.0.1:5432/postgres
    .venv/bin/python bench/workers.py --subscribers 20000 --workers 1 2 --connections 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from send import (
    SOURCE_CAP,
    add_subscribers,
    message_sizes,
    run_source,
    start_sink,
    stop_sink,
)

from digest.config import load_settings
from digest.mail.transport import free_port
from digest.models import DeliveryState
from digest.operations.publisher import Publisher

ROOT = Path(__file__).resolve().parent.parent


def fresh_database(server_url: str, workdir: Path) -> tuple[str, str | None]:
    """A new empty database: (its URL, the name to drop afterwards or None for SQLite)."""
    url = make_url(server_url)
    if url.get_backend_name() == "sqlite":
        return f"sqlite:///{workdir / f'{uuid.uuid4().hex}.sqlite3'}", None
    name = f"digest_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False), name


def drop_database(server_url: str, name: str) -> None:
    admin = create_engine(make_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def measure(args: argparse.Namespace, workers: int, port: int, workdir: Path) -> str:
    database_url, dropped = fresh_database(args.database_url, workdir)
    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": database_url,
        "DIGEST_SMTP__PORT": str(port),
        "DIGEST_DELIVERY__CONNECTIONS": str(args.connections),
    }
    try:
        base = load_settings(ROOT / "config" / "digest.toml")
        settings = base.model_copy(
            update={
                "database_url": database_url,
                "preview_dir": workdir / "preview",
                "smtp": base.smtp.model_copy(update={"port": port}),
            }
        )
        publisher = Publisher(settings)
        now = datetime.now(UTC)
        publisher.init(seed=True, now=now)
        add_subscribers(publisher, args.subscribers, now)
        queued = publisher.send("daily", now=now, deliver=False)
        assert queued.edition is not None
        size = max(message_sizes(publisher, now, workdir / "preview", args.subscribers))
        started = time.perf_counter()
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "digest", "worker", "--until-idle", "--poll", "0.2"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        codes = [process.wait(timeout=3600) for process in processes]
        elapsed = time.perf_counter() - started
        counts = publisher.store.delivery_counts(queued.edition.id)
        sent = counts.get(DeliveryState.SENT, 0)
        source = run_source(
            port,
            min(sent, SOURCE_CAP),
            size,
            sessions=workers * args.connections,
            sender="newsletter@budapestpost.example",
            timeout=600,
        )
        ours, theirs = sent / elapsed, source.messages / source.elapsed_s
        other = {k: v for k, v in counts.items() if k != DeliveryState.SENT}
        return (
            f"{workers:>7}  {workers * args.connections:>8}  {sent:>9,}  {size:>9,}  "
            f"{elapsed:>7.2f}  {ours:>10,.0f}  {theirs:>17,.0f}  {ours / theirs:>11.3f}  "
            f"exit {codes} {other or ''}"
        )
    finally:
        if dropped:
            drop_database(args.database_url, dropped)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DIGEST_TEST_POSTGRES_URL") or "sqlite:///",
        help="a PostgreSQL server URL (a fresh database is made on it per row); default "
        "$DIGEST_TEST_POSTGRES_URL, else SQLite files",
    )
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--connections", type=int, default=2, help="SMTP sessions per worker")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="digest-workers-") as folder:
        workdir = Path(folder)
        sink = start_sink(port, workdir / "sink.log")
        try:
            backend = make_url(args.database_url).get_backend_name()
            print(f"{args.subscribers:,} subscribers on {backend}, sink: Postfix smtp-sink")
            print(
                "workers  sessions       sent  msg bytes   ours s  ours msg/s  "
                "smtp-source msg/s  ours/source"
            )
            for workers in args.workers:
                print(measure(args, workers, port, workdir), flush=True)
        finally:
            stop_sink(sink)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
