"""What DKIM signing costs a real send: `digest send` unsigned and DKIM-signed, in one run.

Set-up, as bench/send.py does it (not timed): a fresh SQLite database seeded by
`Publisher.init(seed=True)` with the repo's config/digest.toml, N generated subscribers on the
`daily` list, and a new RSA 2048 key from `digest.mail.dkim.generate_key` (with `--ed25519`,
an Ed25519 key too). Postfix's `smtp-sink` on loopback accepts and discards the mail.

Then, `--repeat` times, each run on its own copy of that database and in alternating order,
`digest send --list daily` runs as a real subprocess (the console script, `[delivery]
connections` from `--connections`), once with [dkim] off and once with it on (through the
DIGEST_DKIM__* variables), timed from start to exit with `time.perf_counter()`. Messages/s is
the ledger's `sent` count over that time; the figures printed are each run's, the median of
each mode and the ratio signed/unsigned of the medians (target: at least 0.8), and the most
the machine's cores allow: signed mail's CPU per message (digest and smtp-sink) spread over
every core with no idle moment, against the unsigned median.

Also printed, measured in this process on the message template the edition really sends: one
RSA-2048 signature of a SHA-256 digest, a whole `DkimSigner.sign` (canonicalise, hash, sign,
fold), `DkimSigner.sign_parts` as the sender calls it (the fixed segments hashed once per
variant), personalising with and without signing (all these as CPU time of the thread), and
signatures per second from 1 and from 2 threads, which shows whether
OpenSSL runs with the GIL released (2 threads on 2 free cores: close to 2x). `openssl speed`
gives the C library's own figure for comparison, when the `openssl` command is installed.

Run (Postfix's smtp-sink must be installed):

    .venv/bin/python bench/signing.py                      # 2,000 subscribers, 3 rounds
    .venv/bin/python bench/signing.py --subscribers 20000 --repeat 5 --ed25519
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from sqlalchemy import create_engine, func, select

from digest.edition.message import MessageTemplate, Recipient
from digest.mail.dkim import DkimSigner, GeneratedKey, generate_key, load_private_key
from digest.mail.transport import free_port
from digest.models import DeliveryState, Edition
from digest.operations.editions import Variants, recipient, unsaved_edition
from digest.operations.publisher import Publisher
from digest.store.schema import deliveries

sys.path.insert(0, str(Path(__file__).resolve().parent))
from send import LIST_SLUG, add_subscribers, bench_settings, start_sink, stop_sink

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "budapestpost.example"
SECRET = "bench-signing-secret-0d6f2a9c41"
SIGN_ROUNDS = 400
TARGET = 0.8


@dataclass(frozen=True)
class Run:
    """One timed `digest send`."""

    mode: str
    sent: int
    elapsed_s: float
    cpu_s: float  # user + system of the `digest send` process
    sink_cpu_s: float  # and of smtp-sink meanwhile

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s


def base_environment(workdir: Path) -> dict[str, str]:
    """What the parent and every `digest` child share: the install's secret and files."""
    return {
        "DIGEST_CONFIG": str(ROOT / "config" / "digest.toml"),
        "DIGEST_SECRETS_FILE": str(workdir / "secrets.toml"),
        "DIGEST_SITE__UNSUBSCRIBE_SECRET": SECRET,
    }


def prepare(workdir: Path, count: int, port: int, connections: int, now: datetime) -> Path:
    """The seeded database with `count` generated subscribers; returns its path."""
    publisher = Publisher(bench_settings(workdir, port, connections))
    publisher.init(seed=True, now=now)
    add_subscribers(publisher, count, now)
    publisher.store.engine.dispose()  # closed, so that copying the file copies everything
    return workdir / "digest.sqlite3"


def dkim_environment(rsa_key: GeneratedKey, ed_key: GeneratedKey | None) -> dict[str, str]:
    """[dkim] on, through the environment as an operator would set it."""
    env = {
        "DIGEST_DKIM__DOMAIN": DOMAIN,
        "DIGEST_DKIM__SELECTOR": "bench",
        "DIGEST_DKIM__PRIVATE_KEY": str(rsa_key.private_key_path),
    }
    if ed_key is not None:
        env["DIGEST_DKIM__ED25519_SELECTOR"] = "bench-ed"
        env["DIGEST_DKIM__ED25519_PRIVATE_KEY"] = str(ed_key.private_key_path)
    return env


def sent_count(database: Path) -> int:
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            query = select(func.count()).where(deliveries.c.state == DeliveryState.SENT.value)
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """User + system seconds of a running process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_send(
    mode: str, database: Path, *, workdir: Path, env: dict[str, str], timeout: float, sink: int
) -> Run:
    """Copy the database, time one `digest send --list daily` on it, count what was sent."""
    copy = workdir / f"{mode}.sqlite3"
    shutil.copyfile(database, copy)
    env = {**os.environ, **env, "DIGEST_DATABASE_URL": f"sqlite:///{copy}"}
    digest = Path(sys.executable).parent / "digest"
    cpu, sink_cpu = children_cpu(), process_cpu(sink)
    started = time.perf_counter()
    done = subprocess.run(
        [str(digest), "send", "--list", LIST_SLUG],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.perf_counter() - started
    cpu, sink_cpu = children_cpu() - cpu, process_cpu(sink) - sink_cpu
    if done.returncode != 0:
        raise RuntimeError(f"digest send ({mode}) exited {done.returncode}: {done.stderr.strip()}")
    sent = sent_count(copy)
    copy.unlink()
    return Run(mode, sent, elapsed, cpu, sink_cpu)


def per_call_ms(call: object, rounds: int = SIGN_ROUNDS) -> float:
    """CPU milliseconds of this thread per call: on a machine others load, wall time measures
    them as much as the call."""
    assert callable(call)
    call()
    started = time.thread_time()
    for _ in range(rounds):
        call()
    return (time.thread_time() - started) / rounds * 1000


def threaded_rate(call: object, threads: int, rounds: int = SIGN_ROUNDS) -> float:
    """Calls per second with `threads` threads calling at once."""
    assert callable(call)

    def work() -> None:
        for _ in range(rounds):
            call()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return threads * rounds / (time.perf_counter() - started)


def openssl_ms() -> float | None:
    """OpenSSL's own RSA-2048 sign time, from `openssl speed`, if the command is there."""
    binary = shutil.which("openssl")
    if binary is None:
        return None
    done = subprocess.run(
        [binary, "speed", "-seconds", "2", "rsa2048"],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"^rsa\s+2048 bits\s+([0-9.]+)s", done.stdout, re.MULTILINE)
    return float(found[1]) * 1000 if found else None


def edition_template(publisher: Publisher, now: datetime) -> tuple[MessageTemplate, Recipient]:
    """The template `digest send` fills for the first subscriber, and their values."""
    mailing_list = publisher.settings.list(LIST_SLUG)
    found = publisher.edition_or_draft(mailing_list, now)  # what preview and send start from
    edition = found if isinstance(found, Edition) else unsaved_edition(found, now=now)
    variants = Variants(
        publisher.settings.site, mailing_list, publisher.store, publisher.renderer, edition
    )
    chosen = variants.variant(None)
    assert chosen is not None
    who = publisher.store.active_subscribers(LIST_SLUG)[0]
    return chosen.template, recipient(
        publisher.settings.site, publisher.settings.list(LIST_SLUG), edition.edition_date, who
    )


def signing_costs(
    signer: DkimSigner, key_path: Path, template: MessageTemplate, who: Recipient, now: datetime
) -> None:
    """Print the per-signature costs and whether two threads sign twice as fast as one."""
    message = template.personalise(who, date=now)
    print(f"message: {len(message):,} bytes")
    head, holes = template.personal_parts(who, date=now)
    assert signer.sign_parts(
        head, template.fixed_head, template.segments, holes, now=0
    ) == signer.sign(message, now=0)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    digest = sha256(message).digest()
    pkcs1, prehashed = padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())

    def raw() -> None:
        key.sign(digest, pkcs1, prehashed)

    def whole() -> None:
        signer.sign(message)

    def parts() -> None:
        signer.sign_parts(head, template.fixed_head, template.segments, holes)

    def unsigned() -> None:
        template.personalise(who, date=now)

    def personal_signed() -> None:
        part_head, part_holes = template.personal_parts(who, date=now)
        signer.sign_parts(part_head, template.fixed_head, template.segments, part_holes)

    raw_ms = per_call_ms(raw)
    print(f"RSA-2048 sign of a digest (cryptography): {raw_ms:.3f} ms")
    print(f"DkimSigner.sign, whole message:           {per_call_ms(whole):.3f} ms")
    parts_ms = per_call_ms(parts)
    print(
        f"DkimSigner.sign_parts, segments + holes:  {parts_ms:.3f} ms "
        f"(RSA {raw_ms / parts_ms:.0%} of it; the rest is hashing, canonicalising, folding)"
    )
    reference = openssl_ms()
    if reference is not None:
        print(f"openssl speed rsa2048, sign:              {reference:.3f} ms")
    plain, signed = per_call_ms(unsigned), per_call_ms(personal_signed)
    print(
        f"CPU per message, personalise: {plain:.3f} ms, personalise + sign_parts: {signed:.3f} ms"
        f" (signing adds {signed - plain:.3f} ms, RSA {raw_ms:.3f} of it)"
    )
    for name, call in (("sign", whole), ("sign_parts", parts)):
        one, two = threaded_rate(call, 1), threaded_rate(call, 2)
        print(
            f"DkimSigner.{name} from 1 thread: {one:,.0f}/s, from 2 threads: {two:,.0f}/s "
            f"(x{two / one:.2f}; about x2 means signing runs outside the GIL on 2 cores)"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=2_000, help="generated subscribers")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of unsigned + signed")
    parser.add_argument("--connections", type=int, default=4, help="[delivery] connections")
    parser.add_argument("--ed25519", action="store_true", help="add the Ed25519 signature")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per send")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and print it")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="digest-bench-signing-"))
    os.environ.update(base_environment(workdir))  # the set-up reads the same secret
    port = free_port()
    sink = start_sink(port, workdir / "smtp-sink.log")
    try:
        now = datetime.now(UTC)  # `digest send` reads the clock: the set-up uses it too
        database = prepare(workdir, args.subscribers, port, args.connections, now)
        keys = workdir / "keys"
        rsa_key = generate_key(keys, selector="bench", domain=DOMAIN)
        ed_key = (
            generate_key(keys, selector="bench-ed", domain=DOMAIN, ed25519_key=True)
            if args.ed25519
            else None
        )
        env = {
            "DIGEST_SMTP__HOST": "127.0.0.1",
            "DIGEST_SMTP__PORT": str(port),
            "DIGEST_PREVIEW_DIR": str(workdir / "preview"),
            "DIGEST_DELIVERY__CONNECTIONS": str(args.connections),
        }
        signed_env = {**env, **dkim_environment(rsa_key, ed_key)}
        runs: list[Run] = []
        for round_ in range(args.repeat):
            order = ("unsigned", "signed") if round_ % 2 == 0 else ("signed", "unsigned")
            for mode in order:
                chosen = signed_env if mode == "signed" else env
                run = run_send(
                    mode, database, workdir=workdir, env=chosen, timeout=args.timeout, sink=sink.pid
                )
                runs.append(run)
                print(
                    f"round {round_ + 1} {mode:>8}: {run.sent:,} sent in {run.elapsed_s:.2f} s "
                    f"= {run.rate:,.0f} msg/s; CPU per message: digest "
                    f"{run.cpu_s / run.sent * 1000:.2f} ms, smtp-sink "
                    f"{run.sink_cpu_s / run.sent * 1000:.2f} ms",
                    flush=True,
                )
        medians = {
            mode: statistics.median(run.rate for run in runs if run.mode == mode)
            for mode in ("unsigned", "signed")
        }
        ratio = medians["signed"] / medians["unsigned"]
        kind = "RSA-2048 + Ed25519" if ed_key else "RSA-2048"
        print(
            f"median unsigned: {medians['unsigned']:,.0f} msg/s, signed ({kind}): "
            f"{medians['signed']:,.0f} msg/s, ratio {ratio:.2f} (target >= {TARGET})"
        )
        # What the cores allow: signed mail's CPU per message (digest and smtp-sink) over
        # every core of the machine, as if both were busy all the time with nothing else.
        cores = len(os.sched_getaffinity(0))
        signed_cpu = statistics.median(
            (run.cpu_s + run.sink_cpu_s) / run.sent for run in runs if run.mode == "signed"
        )
        ceiling = cores / signed_cpu
        print(
            f"CPU per signed message {signed_cpu * 1000:.2f} ms (digest + smtp-sink): "
            f"{cores} cores allow at most {ceiling:,.0f} msg/s signed, a ratio of at most "
            f"{ceiling / medians['unsigned']:.2f}"
        )
        if args.json:
            row = {
                "label": f"DKIM ({kind}) against unsigned, {args.subscribers:,} subscribers",
                "unsigned_msg_per_s": medians["unsigned"],
                "signed_msg_per_s": medians["signed"],
                "ratio": ratio,
            }
            print("BENCH-JSON " + json.dumps(row), flush=True)
        publisher = Publisher(bench_settings(workdir, port, args.connections))
        signer = DkimSigner(
            domain=DOMAIN,
            selector="bench",
            private_key=load_private_key(rsa_key.private_key_path),
            ed25519_selector="bench-ed" if ed_key else "",
            ed25519_key=ed_key.private_key_path.read_bytes() if ed_key else None,
        )
        template, who = edition_template(publisher, now)
        signing_costs(signer, rsa_key.private_key_path, template, who, now)
    finally:
        stop_sink(sink)
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
