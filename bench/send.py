"""How fast `digest send` hands a daily edition to an SMTP server, next to Postfix's smtp-source.

For each subscriber count N the script, in a fresh child process of itself (so that the peak
RSS it reports belongs to that N alone):

1. makes a temp dir with a new SQLite database, runs `Publisher.init(seed=True)` with the repo's
   config/digest.toml (database, preview dir and SMTP port pointed at the temp dir and the sink);
2. adds N generated subscribers to the `daily` list in one bulk transaction (SQLAlchemy Core
   executemany; not timed), some with Hungarian accented names, some plain, some nameless;
3. times `Publisher.send("daily")` with `time.perf_counter()`: drafting and storing the edition,
   queueing the ledger, then claiming, personalising, sending and recording every message over
   `--connections` SMTP sessions (the `[delivery] connections` setting; the rest of [delivery]
   is the repo's config) to Postfix's `smtp-sink` on loopback, which accepts and discards mail;
4. reads the sent/failed counts from the delivery ledger, the peak RSS (ru_maxrss) before and
   after the send, and the average message size from a few `Publisher.preview` .eml files.

The parent then times Postfix's `smtp-source` sending as many messages of that size
(`-l SIZE`, at most 100,000) to the same sink, with `-s C` parallel sessions and `-d` (several
messages per session, as digest does), and prints one row per N: our elapsed time and
messages/s, smtp-source's messages/s, the ratio ours/smtp-source, the peak RSS and the exact
ledger counts. smtp-source is about as fast as an SMTP client gets, so the ratio says how much
of the sink's capacity digest uses, not whether digest is "fast enough". Nothing is asserted.

The `daily` list also holds the seeded subscribers, so the messages sent are N plus those.
`--connections C` gives both digest and smtp-source C parallel sessions (default 4, as in the
repo's config). digest also reconnects every `messages_per_connection` messages, as
configured; smtp-source keeps its sessions. smtp-sink parses every line in one process, so at
tens of KB per message it, not smtp-source, sets the reference figure.

Run (Postfix's smtp-sink and smtp-source must be installed):

    .venv/bin/python bench/send.py                               # 100,000 over 4 connections
    .venv/bin/python bench/send.py --subscribers 100000 1000000
    .venv/bin/python bench/send.py --subscribers 10000 --connections 1 --keep
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from digest.config import Settings, load_settings
from digest.mail.transport import free_port
from digest.models import DeliveryState, SubscriptionStatus
from digest.operations.publisher import Publisher
from digest.operations.recorder import DeliveryReport, Watch
from digest.store.schema import lists, subscribers, subscriptions

ROOT = Path(__file__).resolve().parent.parent
LIST_SLUG = "daily"
RESULT_PREFIX = "BENCH-RESULT "
SOURCE_CAP = 100_000
CHUNK = 5_000
SINK_START_TIMEOUT = 10.0

SURNAMES = ("Győri", "Fűzfa", "Szűcs", "Kőváry", "Lőrincz", "Sütő", "Fülöp", "Pásztor", "Bakó")
GIVEN = ("Ödön", "Örs", "Erzsébet", "Réka", "Bence", "György", "Márton", "Judit", "Tímea")
PLAIN = ("Emma Clarke", "Peter Smith", "Anna Weber", "Michael Brennan", "Laura Jones")


@dataclass
class ChildResult:
    """What one `--one N` child measured; printed as one JSON line."""

    subscribers: int
    seeded_active: int
    expected: int
    generate_s: float
    elapsed_s: float
    first_accepted_s: float  # from the start of `send` to the relay's first 250 after DATA
    counts: dict[str, int]
    queued: int
    problems: int
    message_bytes: int
    message_bytes_min: int
    message_bytes_max: int
    rss_before_kb: int
    rss_peak_kb: int
    cpu_s: float  # this process's user + system CPU seconds during the send
    workdir: str
    delivery: str


@dataclass
class SourceResult:
    """Postfix smtp-source's run against the same sink."""

    messages: int
    elapsed_s: float
    ok: bool
    detail: str = ""


@dataclass
class Row:
    """One line of the final table."""

    ours: ChildResult
    source: SourceResult | None
    notes: list[str] = field(default_factory=list)


# -- the child: one subscriber count --------------------------------------------------------------


def bench_settings(workdir: Path, port: int, connections: int) -> Settings:
    """The repo's own config, pointed at a temp database, a temp preview dir and the sink."""
    base = load_settings(ROOT / "config" / "digest.toml")
    smtp = base.smtp.model_copy(update={"host": "127.0.0.1", "port": port, "timeout": 10.0})
    delivery = base.delivery.model_copy(update={"connections": connections})
    return base.model_copy(
        update={
            "database_url": f"sqlite:///{workdir / 'digest.sqlite3'}",
            "preview_dir": workdir / "preview",
            "smtp": smtp,
            "delivery": delivery,
        }
    )


def generated_name(i: int) -> str:
    """Half the names carry Hungarian accents, a quarter are plain ASCII, a quarter are empty."""
    kind = i % 4
    if kind in (0, 2):
        return f"{SURNAMES[i % len(SURNAMES)]} {GIVEN[(i // 4) % len(GIVEN)]} {i}"
    if kind == 1:
        return f"{PLAIN[i % len(PLAIN)]} {i}"
    return ""


def add_subscribers(publisher: Publisher, count: int, now: datetime) -> None:
    """Insert `count` active subscribers of the list in one transaction, chunked executemany."""
    with publisher.store.engine.begin() as tx:
        list_id = tx.execute(select(lists.c.id).where(lists.c.slug == LIST_SLUG)).scalar_one()
        first = int(tx.execute(select(func.coalesce(func.max(subscribers.c.id), 0))).scalar_one())
        first += 1
        for start in range(0, count, CHUNK):
            people: list[dict[str, Any]] = []
            links: list[dict[str, Any]] = []
            for i in range(start, min(start + CHUNK, count)):
                email = f"user{i}@example.com"
                hungarian = i % 4 in (0, 2)
                people.append(
                    {
                        "id": first + i,
                        "email": email,
                        "email_key": email,
                        "name": generated_name(i),
                        "locale": "hu" if hungarian else "en",
                        "timezone": "Europe/Budapest" if hungarian else "Europe/London",
                        "created_at": now,
                    }
                )
                links.append(
                    {
                        "subscriber_id": first + i,
                        "list_id": list_id,
                        "status": SubscriptionStatus.ACTIVE.value,
                        "sections": None,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            tx.execute(insert(subscribers), people)
            tx.execute(insert(subscriptions), links)


def message_sizes(publisher: Publisher, now: datetime, out_dir: Path, count: int) -> list[int]:
    """Sizes of the .eml that `preview` writes for the first generated subscribers (each kind)."""
    sizes = []
    for i in range(min(count, 4)):
        files = publisher.preview(
            LIST_SLUG, now=now, out_dir=out_dir, subscriber=f"user{i}@example.com"
        )
        sizes.append(files.eml.stat().st_size)
    if not sizes:  # no generated subscriber: the first seeded one
        sizes.append(publisher.preview(LIST_SLUG, now=now, out_dir=out_dir).eml.stat().st_size)
    return sizes


def cpu_seconds() -> float:
    """The user and system CPU time this process has used so far, all threads together."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def max_rss_kb() -> int:
    """The process's peak resident set size so far (KB on Linux): a high-water mark."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def prepare(
    workdir: Path, count: int, port: int, now: datetime, connections: int
) -> tuple[Publisher, int, float]:
    """A fresh seeded database with `count` generated subscribers.

    Returns the publisher, how many seeded subscribers are active, and the seconds it took.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    publisher = Publisher(bench_settings(workdir, port, connections))
    publisher.init(seed=True, now=now)
    seeded = len(publisher.store.active_subscribers(LIST_SLUG))
    started = time.perf_counter()
    add_subscribers(publisher, count, now)
    return publisher, seeded, time.perf_counter() - started


def run_one(count: int, port: int, now: datetime, workdir: Path, connections: int) -> ChildResult:
    """Set up, time one `send`, and collect the ledger counts, RSS and message size."""
    publisher, seeded, generate_s = prepare(workdir, count, port, now, connections)
    delivery = publisher.settings.delivery
    rss_before = max_rss_kb()
    cpu_before = cpu_seconds()
    first: list[float] = []

    def progress(report: DeliveryReport) -> None:
        if not first and report.counts.get(DeliveryState.SENT):
            first.append(time.perf_counter())

    started = time.perf_counter()
    result = publisher.send(LIST_SLUG, now=now, watch=Watch(progress=progress))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    rss_peak = max_rss_kb()
    counts = publisher.store.delivery_counts(result.edition.id) if result.edition else {}
    sizes = message_sizes(publisher, now, workdir / "preview", count)
    return ChildResult(
        subscribers=count,
        seeded_active=seeded,
        expected=seeded + count,
        generate_s=generate_s,
        elapsed_s=elapsed,
        first_accepted_s=(first[0] - started) if first else elapsed,
        counts={str(k): v for k, v in counts.items()},
        queued=result.queued,
        problems=len(result.report.problems),
        message_bytes=round(sum(sizes) / len(sizes)),
        message_bytes_min=min(sizes),
        message_bytes_max=max(sizes),
        rss_before_kb=rss_before,
        rss_peak_kb=rss_peak,
        cpu_s=cpu,
        workdir=str(workdir),
        delivery=(
            f"connections={delivery.connections} "
            f"messages_per_connection={delivery.messages_per_connection} "
            f"rate_per_second={delivery.rate_per_second} hourly_cap={delivery.hourly_cap} "
            f"batch_size={delivery.batch_size} commit_group={delivery.commit_group}"
        ),
    )


# -- the parent: sink, children, smtp-source, table -----------------------------------------------


def wait_for_port(port: int, sink: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll until the sink greets on `port`, it dies, or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sink.poll() is not None:
            raise RuntimeError(f"smtp-sink exited with status {sink.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as probe:
                # The banner names smtp-sink: not some other server that holds the port.
                if b"smtp-sink" in probe.recv(512) and sink.poll() is None:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"smtp-sink did not accept connections on port {port} in {timeout}s")


def start_sink(port: int, log: Path) -> subprocess.Popen[bytes]:
    """Postfix's smtp-sink on loopback: accepts and discards, 1024 pending connections."""
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    command = [binary]
    if os.geteuid() == 0:
        command += ["-u", "nobody"]  # it refuses to keep root privileges
    command += [f"127.0.0.1:{port}", "1024"]
    with log.open("wb") as errors:
        sink = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        wait_for_port(port, sink, SINK_START_TIMEOUT)
    except BaseException:
        stop_sink(sink)
        raise
    return sink


def stop_sink(sink: subprocess.Popen[bytes]) -> None:
    """Terminate the sink and reap it, killing it if it lingers."""
    if sink.poll() is None:
        sink.terminate()
        try:
            sink.wait(timeout=5)
        except subprocess.TimeoutExpired:
            sink.kill()
            sink.wait(timeout=5)


def run_child(
    count: int, port: int, now: datetime, workdir: Path, *, connections: int, timeout: float
) -> ChildResult | str:
    """Re-invoke this script with --one; the result, or why there is none."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one",
        str(count),
        "--port",
        str(port),
        "--now",
        now.isoformat(),
        "--workdir",
        str(workdir),
        "--connections",
        str(connections),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return f"the child for N={count} did not finish in {timeout:.0f}s"
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return ChildResult(**json.loads(line.removeprefix(RESULT_PREFIX)))
    tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
    return f"the child for N={count} exited {done.returncode} without a result:\n{tail}"


def run_source(
    port: int, messages: int, size: int, *, sessions: int, sender: str, timeout: float
) -> SourceResult:
    """Time Postfix's smtp-source sending `messages` of `size` payload bytes to the sink."""
    binary = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    command = [
        binary,
        "-d",  # several messages per session, as digest does
        "-s",
        str(sessions),
        "-m",
        str(messages),
        "-l",
        str(size),
        "-f",
        sender,
        "-t",
        "reader@example.com",
        "-M",
        "localhost",  # no lookup of this machine's name
        f"127.0.0.1:{port}",
    ]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return SourceResult(messages, time.perf_counter() - started, False, "timed out")
    elapsed = time.perf_counter() - started
    detail = (done.stderr or done.stdout).strip()[-500:]
    return SourceResult(messages, elapsed, done.returncode == 0, detail)


def check_counts(ours: ChildResult) -> list[str]:
    """Loud notes when the ledger shows anything but every expected message sent."""
    sent = ours.counts.get(DeliveryState.SENT, 0)
    others = {k: v for k, v in ours.counts.items() if k != DeliveryState.SENT and v}
    notes = []
    if sent != ours.expected or others:
        notes.append(
            f"!!! WARNING N={ours.subscribers}: ledger has {sent} sent of {ours.expected} "
            f"expected; other states: {others or 'none'}; {ours.problems} problems reported"
        )
    return notes


def mb(kb: int) -> str:
    return f"{kb / 1024:.1f}"


def print_table(rows: list[Row], connections: int) -> None:
    """One line per N, then the notes."""
    headers = (
        "subscribers",
        "messages",
        "msg bytes",
        "ours s",
        "ours msg/s",
        "smtp-source s",
        "smtp-source msg/s",
        "ours/source",
        "first 250 s",
        "CPU ms/msg",
        "peak RSS MB",
        "sent",
        "failed",
        "other",
    )
    lines = []
    for row in rows:
        ours = row.ours
        sent = ours.counts.get(DeliveryState.SENT, 0)
        failed = ours.counts.get(DeliveryState.FAILED, 0)
        other = sum(ours.counts.values()) - sent - failed
        rate = sent / ours.elapsed_s if ours.elapsed_s else 0.0
        if row.source and row.source.ok and row.source.elapsed_s:
            source_rate = row.source.messages / row.source.elapsed_s
            source = (
                f"{row.source.elapsed_s:.2f}",
                f"{source_rate:,.0f}",
                f"{rate / source_rate:.3f}",
            )
        else:
            source = ("n/a", "n/a", "n/a")
        lines.append(
            (
                f"{ours.subscribers:,}",
                f"{sum(ours.counts.values()):,}",
                f"{ours.message_bytes:,}",
                f"{ours.elapsed_s:.2f}",
                f"{rate:,.0f}",
                *source,
                f"{ours.first_accepted_s:.2f}",
                f"{1000 * ours.cpu_s / max(1, sum(ours.counts.values())):.3f}",
                mb(ours.rss_peak_kb),
                f"{sent:,}",
                f"{failed:,}",
                f"{other:,}",
            )
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    print()
    print(f"digest send vs smtp-source, {connections} connection(s) each, sink: Postfix smtp-sink")
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)))
    print()
    for row in rows:
        ours = row.ours
        print(
            f"N={ours.subscribers:,}: messages = {ours.subscribers:,} generated + "
            f"{ours.seeded_active} seeded; generation {ours.generate_s:.2f}s (not timed); "
            f"size {ours.message_bytes_min:,}-{ours.message_bytes_max:,} bytes; "
            f"peak RSS before send {mb(ours.rss_before_kb)} MB, after {mb(ours.rss_peak_kb)} MB"
        )
        print(f"  digest [delivery]: {ours.delivery}")
        if row.source:
            print(
                f"  smtp-source: {row.source.messages:,} messages, -l {ours.message_bytes} "
                f"(payload; it adds a few short headers of its own)"
            )
        for note in row.notes:
            print(note)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time `digest send` to Postfix's smtp-sink, next to smtp-source."
    )
    parser.add_argument(
        "--subscribers",
        type=int,
        nargs="+",
        default=[100_000],
        metavar="N",
        help="subscriber counts to measure, each in a fresh process (default: 100000)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=4,
        metavar="C",
        help="parallel SMTP sessions, for digest and for smtp-source (default 4, as configured)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and print it")
    parser.add_argument("--json", action="store_true", help="also print each row as JSON")
    parser.add_argument("--port", type=int, help="the sink's port (default: a free one)")
    # Internal: the child mode and what the parent fixes once per run.
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if any(n < 0 for n in args.subscribers) or args.connections < 1:
        parser.error("subscriber counts must be >= 0 and connections >= 1")
    return args


def child_main(args: argparse.Namespace) -> int:
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="digest-one-"))
    result = run_one(args.one, args.port, now, workdir, args.connections)
    print(RESULT_PREFIX + json.dumps(asdict(result)), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one is not None:
        return child_main(args)
    now = datetime.now(UTC)
    port = args.port or free_port()
    root = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    sender = load_settings(ROOT / "config" / "digest.toml").list(LIST_SLUG).from_address
    rows: list[Row] = []
    broken = False
    print(f"now={now.isoformat()} sink=127.0.0.1:{port} workdir={root}", flush=True)
    sink: subprocess.Popen[bytes] | None = None
    try:
        try:
            sink = start_sink(port, root / "smtp-sink.log")
        except (OSError, RuntimeError) as exc:
            log = (root / "smtp-sink.log").read_text(errors="replace").strip()
            print(f"!!! cannot start smtp-sink: {exc}\n{log}", flush=True)
            return 1
        for count in args.subscribers:
            print(f"N={count:,}: setting up and sending ...", flush=True)
            ours = run_child(
                count,
                port,
                now,
                root / f"n{count}",
                connections=args.connections,
                timeout=120 + count / 20,
            )
            if isinstance(ours, str):
                print(f"!!! {ours}", flush=True)
                broken = True
                continue
            messages = min(sum(ours.counts.values()) or count, SOURCE_CAP)
            source = run_source(
                port,
                messages,
                ours.message_bytes,
                sessions=args.connections,
                sender=sender,
                timeout=60 + messages / 100,
            )
            notes = check_counts(ours)
            if not source.ok:
                notes.append(f"!!! smtp-source failed for N={count}: {source.detail}")
            rows.append(Row(ours, source, notes))
            if sink.poll() is not None:
                print(f"!!! smtp-sink died (status {sink.returncode})", flush=True)
                broken = True
                break
    finally:
        if sink is not None:
            stop_sink(sink)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if rows:
        print_table(rows, args.connections)
        if args.json:
            for row in rows:
                print("BENCH-JSON " + json.dumps(summary(row)), flush=True)
    return 1 if broken else 0


def summary(row: Row) -> dict[str, Any]:
    """The row's headline figures, for bench/table.py."""
    ours = row.ours
    rate = ours.counts.get(DeliveryState.SENT, 0) / ours.elapsed_s if ours.elapsed_s else 0.0
    source = row.source
    source_rate = source.messages / source.elapsed_s if source and source.ok else None
    return {
        "subscribers": ours.subscribers,
        "msg_per_s": rate,
        "source_msg_per_s": source_rate,
        "ratio": rate / source_rate if source_rate else None,
        "peak_rss_mb": ours.rss_peak_kb / 1024,
        "first_accepted_s": ours.first_accepted_s,
    }


if __name__ == "__main__":
    sys.exit(main())
