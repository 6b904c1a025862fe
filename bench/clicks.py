"""How many counted-link clicks a `digest web` process answers, and how fast, during a send.

The script:

1. makes a temp dir with a new SQLite database and secrets file, runs `digest init --seed`,
   adds `--readers` active subscribers of `daily` and of `weekly` in bulk and makes today's
   daily edition with its deliveries queued (not timed; the weekly one is queued the same
   way before its phase);
2. starts Postfix's `smtp-sink` and `digest web` (uvicorn, as it is run) on loopback;
3. from `--connections` keep-alive HTTP/1.1 connections of one asyncio client, times each
   request from its first byte written to its last byte read, in four phases:

       static, idle     `--static` GETs of `/unsubscribe` (a page from a template, no write)
       clicks, sending  `--clicks` GETs of the daily edition's counted links (`/c/<token>/-`,
                        aggregate tracking) while a `digest worker --until-idle` sends it,
                        from its first copy sent (nobody clicks before the mail arrives)
       clicks, idle     the same clicks once that send is over
       static, sending  the static GETs while a second worker sends `weekly`

   A thread watches the ledger (a read every 50 ms) to tell when each send ended: a sending
   phase's figures count only the requests begun while its send still ran, and the share of
   the phase that was, and the copies the worker sent meanwhile, are printed beside them;
4. prints each phase's requests/s, median and p99 latency, the clicks' answers by status, how
   many click rows the database holds once `digest web` stopped, and the ratio of clicks to
   the static page in the same state.

Nothing is asserted; the target is 1,000 clicks/s with a p99 under 50 ms while a send runs.
Every process shares the machine's cores: the web app, the worker, smtp-sink and this load
generator.

    .venv/bin/python bench/clicks.py
    .venv/bin/python bench/clicks.py --clicks 50000 --connections 32 --readers 40000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from send import start_sink, stop_sink
from sqlalchemy import func, insert, select
from unsubscribes import (
    add_readers,
    read_answer,
    seeded_install,
    start_digest,
    wait_until_listening,
)

from digest.config import Settings
from digest.mail.transport import free_port
from digest.models import DeliveryState, Edition, EditionStatus, SubscriptionStatus
from digest.operations.clicks import click_links, reader_part
from digest.operations.publisher import Publisher
from digest.store.clicks import clicks
from digest.store.schema import deliveries, editions, lists, subscriptions

ROOT = Path(__file__).resolve().parent.parent
LIST_SLUG, SECOND_SLUG = "daily", "weekly"
AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"
WATCH_SECONDS = 0.05


@dataclass
class Phase:
    """One phase's requests: (began, seconds) each, in perf_counter time, and the statuses."""

    name: str
    began: float = 0.0
    ended: float = 0.0
    timings: list[tuple[float, float]] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    sent: int | None = None  # copies the worker sent during the phase, if one ran

    def figures(self, until: float | None = None) -> tuple[int, float, float, float, float]:
        """(requests, requests/s, p50 ms, p99 ms, share of the phase) for the requests begun
        before `until` (None: all of them)."""
        cut = self.ended if until is None else min(until, self.ended)
        kept = [seconds for began, seconds in self.timings if began < cut]
        if len(kept) < 100:
            return len(kept), 0.0, 0.0, 0.0, 0.0
        done = max(began + seconds for began, seconds in self.timings if began < cut)
        cuts = statistics.quantiles(kept, n=100)
        return (
            len(kept),
            len(kept) / (done - self.began),
            statistics.median(kept) * 1000,
            cuts[98] * 1000,
            (cut - self.began) / (self.ended - self.began),
        )


async def client(port: int, paths: list[str], phase: Phase) -> None:
    """GET each path in turn over one keep-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for path in paths:
        request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: {AGENT}\r\n\r\n"
        began = time.perf_counter()
        writer.write(request.encode())
        phase.statuses[await read_answer(reader)] += 1
        phase.timings.append((began, time.perf_counter() - began))
    writer.close()


def load(name: str, port: int, paths: list[str], connections: int) -> Phase:
    """Every path fetched once, spread over the connections."""
    phase = Phase(name)
    shares = [paths[i::connections] for i in range(connections)]

    async def run() -> None:
        await asyncio.gather(*(client(port, share, phase) for share in shares))

    phase.began = time.perf_counter()
    asyncio.run(run())
    phase.ended = time.perf_counter()
    return phase


class SendWatch:
    """Reads the ledger every WATCH_SECONDS: when the edition's first copy was sent, and when
    its send ended (the edition done, or the worker gone)."""

    def __init__(self, publisher: Publisher, edition_id: int, worker: subprocess.Popen[bytes]):
        self._publisher, self._edition_id, self._worker = publisher, edition_id, worker
        self.started = threading.Event()
        self.ended: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _state(self) -> tuple[int, str]:
        """(copies sent, the edition's status)."""
        with self._publisher.store.engine.connect() as connection:
            sent = connection.execute(
                select(func.count()).where(
                    deliveries.c.edition_id == self._edition_id,
                    deliveries.c.state == DeliveryState.SENT.value,
                )
            ).scalar_one()
            status = connection.execute(
                select(editions.c.status).where(editions.c.id == self._edition_id)
            ).scalar_one()
        return int(sent), str(status)

    def sent(self) -> int:
        """Copies of the edition sent so far."""
        return self._state()[0]

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_SECONDS):
            sent, status = self._state()
            if sent:
                self.started.set()
            if (
                status in (EditionStatus.DONE, EditionStatus.PAUSED)
                or self._worker.poll() is not None
            ):
                self.ended = time.perf_counter()
                self.started.set()
                return

    def stop(self) -> None:
        """Stop watching (the send is over, or the phase is)."""
        self._stop.set()
        self._thread.join()


def subscribe_too(publisher: Publisher, slug: str) -> None:
    """Give every active subscriber of LIST_SLUG a subscription to `slug` too."""
    now = datetime.now(UTC)
    with publisher.store.engine.begin() as tx:
        ids = dict(tx.execute(select(lists.c.slug, lists.c.id)).all())
        readers = tx.execute(
            select(subscriptions.c.subscriber_id).where(
                subscriptions.c.list_id == ids[LIST_SLUG],
                subscriptions.c.status == SubscriptionStatus.ACTIVE.value,
            )
        ).scalars()
        taken = set(
            tx.execute(
                select(subscriptions.c.subscriber_id).where(subscriptions.c.list_id == ids[slug])
            ).scalars()
        )
        rows = [
            {
                "subscriber_id": reader,
                "list_id": ids[slug],
                "status": SubscriptionStatus.ACTIVE.value,
                "sections": None,
                "created_at": now,
                "updated_at": now,
            }
            for reader in readers
            if reader not in taken
        ]
        if rows:
            tx.execute(insert(subscriptions), rows)


def counts(publisher: Publisher) -> int:
    """Click rows as the database holds them now."""
    with publisher.store.engine.begin() as tx:
        return int(tx.execute(select(func.count()).select_from(clicks)).scalar_one())


def edition_size(publisher: Publisher, edition_id: int) -> int:
    """The edition's deliveries."""
    with publisher.store.engine.begin() as tx:
        return int(
            tx.execute(
                select(func.count())
                .select_from(deliveries)
                .join(editions, editions.c.id == deliveries.c.edition_id)
                .where(editions.c.id == edition_id)
            ).scalar_one()
        )


def while_sending(
    publisher: Publisher, edition_id: int, env: dict[str, str], run: Callable[[], Phase]
) -> tuple[Phase, float | None]:
    """`run()` while a worker sends the edition, from its first copy sent (nobody clicks a
    link before the mail arrives); the phase and when the send ended (None: it outlasted
    the phase). Returns once the send is over."""
    log = Path(env["DIGEST_PREVIEW_DIR"]).parent / f"worker-{edition_id}.log"
    with log.open("wb") as errors:
        worker = start_digest(env, "worker", "--until-idle", stderr=errors)
    watch = SendWatch(publisher, edition_id, worker)
    try:
        watch.started.wait(timeout=120)
        before = watch.sent()
        phase = run()
        phase.sent = watch.sent() - before
    finally:
        watch.stop()
        worker.wait(timeout=600)  # the rest of the send: the next phase starts idle
    if worker.returncode != 0:
        raise SystemExit(f"the worker exited with {worker.returncode}:\n{log.read_text()[-2000:]}")
    return phase, watch.ended


def line(phase: Phase, until: float | None = None) -> str:
    """A phase's figures as one line."""
    n, rate, p50, p99, share = phase.figures(until)
    during = "" if until is None else f" ({share:.0%} of the phase, the rest after the send)"
    if until is not None and share >= 1.0:
        during = " (the send outlasted the phase)"
    if phase.sent is not None:
        seconds = phase.ended - phase.began
        during += f"; {phase.sent:,} copies sent meanwhile, {phase.sent / seconds:,.0f}/s"
    return (
        f"{phase.name:<16} {n:>7,} requests {rate:>7,.0f}/s"
        f"  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms{during}"
    )


def click_paths(settings: Settings, edition: Edition, ids: list[int], clicks: int) -> list[str]:
    """`clicks` paths of the edition's counted links: click i follows article i mod n from
    reader i's copy, so a reader follows one link or a few far apart, never a scanner's
    burst (with aggregate tracking every reader part is "-")."""
    daily = settings.list(LIST_SLUG)
    links = click_links(settings.site, daily, edition.edition_date, nonce=edition.slot_nonce)
    assert links is not None, "tracking is off"
    base, marker = len(settings.site.base_url), links.reader
    targets = [links.url(article_id)[base:] for article_id in edition.article_ids]
    readers = [reader_part(settings.site, daily, edition.edition_date, i) for i in ids]
    return [
        targets[i % len(targets)].replace(marker, readers[i % len(readers)]) for i in range(clicks)
    ]


def measure(args: argparse.Namespace, folder: Path) -> tuple[list[str], dict[str, object]]:
    """Set up, run the four phases; the lines to print and the JSON row."""
    sink_port, web_port = free_port(), free_port()
    config = ROOT / "config" / "digest.toml"
    if args.tracking != "aggregate":  # the same configuration, the daily list's tracking set
        text = config.read_text(encoding="utf-8")
        config = folder / "digest.toml"
        daily = f'slug = "{LIST_SLUG}"\n'
        config.write_text(text.replace(daily, f'{daily}tracking = "{args.tracking}"\n', 1))
    env, publisher = seeded_install(folder, sink_port, config)
    settings = publisher.settings
    ids = add_readers(publisher, args.readers)
    subscribe_too(publisher, SECOND_SLUG)
    now = datetime.now(UTC)
    edition = publisher.send(LIST_SLUG, now=now, deliver=False).edition
    assert edition is not None, "no edition"
    paths = click_paths(settings, edition, ids, args.clicks)
    static = ["/unsubscribe"] * args.static
    sink = start_sink(sink_port, folder / "smtp-sink.log")
    web = start_digest(env, "web", "--host", "127.0.0.1", "--port", str(web_port))
    c = args.connections
    try:
        asyncio.run(wait_until_listening(web_port, web))
        load("warm-up", web_port, static[:500], c)
        static_idle = load("static, idle", web_port, static, c)
        clicks_busy, clicks_until = while_sending(
            publisher, edition.id, env, lambda: load("clicks, sending", web_port, paths, c)
        )
        clicks_idle = load("clicks, idle", web_port, paths, c)
        # Queued only now: a worker sends every edition that is due.
        second = publisher.send(SECOND_SLUG, now=now, deliver=False).edition
        assert second is not None, "no second edition"
        static_busy, static_until = while_sending(
            publisher, second.id, env, lambda: load("static, sending", web_port, static, c)
        )
    finally:
        web.terminate()
        web.wait(timeout=30)
        stop_sink(sink)
    rows = counts(publisher)  # after the web app's clean stop wrote what it had queued
    sizes = (edition_size(publisher, edition.id), edition_size(publisher, second.id))
    _, rate, p50, p99, share = clicks_busy.figures(clicks_until)
    idle_rate, idle_p99 = clicks_idle.figures()[1], clicks_idle.figures()[3]
    static_rate, static_busy_rate = static_idle.figures()[1], static_busy.figures(static_until)[1]
    answers = clicks_idle.statuses + clicks_busy.statuses
    lines = [
        f"{c} connections, tracking {args.tracking}; the sends: {sizes[0]:,} and"
        f" {sizes[1]:,} copies to smtp-sink",
        line(static_idle),
        line(clicks_busy, clicks_until or clicks_busy.ended),
        line(clicks_idle),
        line(static_busy, static_until or static_busy.ended),
        f"clicks while sending: {rate:,.0f}/s, p99 {p99:.1f} ms (target 1,000/s, p99 under"
        f" 50 ms); {rate / (static_busy_rate or 1):.2f}x the static page while sending,"
        f" {idle_rate / (static_rate or 1):.2f}x it idle",
        f"click answers: {dict(sorted(answers.items()))}; click rows: {rows:,}"
        f" of {2 * args.clicks:,} clicks",
    ]
    row: dict[str, object] = {
        "label": f"counted-link clicks ({args.tracking}) during a send to {args.readers:,}",
        "clicks_per_s": rate,
        "p50_ms": p50,
        "p99_ms": p99,
        "share_during_send": share,
        "idle_clicks_per_s": idle_rate,
        "idle_p99_ms": idle_p99,
        "static_per_s_sending": static_busy_rate,
        "static_per_s_idle": static_rate,
        "not_302": sum(n for status, n in answers.items() if status != 302),
        "click_rows": rows,
    }
    return lines, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clicks", type=int, default=20_000, help="GETs of counted links")
    parser.add_argument("--static", type=int, default=5_000, help="GETs of the static page")
    parser.add_argument("--readers", type=int, default=20_000, help="each send's subscribers")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--tracking", choices=("aggregate", "per_subscriber"), default="aggregate")
    parser.add_argument("--json", action="store_true", help="also print the row as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="digest-clicks-") as folder:
        lines, row = measure(args, Path(folder))
    print("\n".join(lines))
    if args.json:
        print("BENCH-JSON " + json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
