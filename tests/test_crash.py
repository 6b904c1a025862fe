"""Crash safety: SIGKILL the sender five times in a 20,000-recipient send, restart it each time.

Nobody may end with no message, each kill may double at most (connections + commit group)
messages, and the ledger must agree with what the server stored.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import insert, select

from digest.app import App
from digest.config import load_settings
from digest.models import DeliveryState, SubscriptionStatus
from digest.schema import lists, subscribers, subscriptions
from digest.transport import free_port
from tests.conftest import ROOT

RECIPIENTS = 20_000
KILLS = 5
CONNECTIONS = 4
COMMIT_GROUP = 50


class CountingHandler:
    """Keeps only each message's Message-ID, and wakes a waiter at a chosen count."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.lock = threading.Lock()
        self.target = 0
        self.reached = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        head = envelope.original_content.split(b"\r\n\r\n", 1)[0]
        found = next(line for line in head.split(b"\r\n") if line[:11].lower() == b"message-id:")
        with self.lock:
            self.ids.append(found[11:].strip().decode())
            if len(self.ids) >= self.target:
                self.reached.set()
        return "250 2.0.0 Ok"

    def arm(self, target: int) -> None:
        with self.lock:
            self.target = target
            self.reached.clear()
            if len(self.ids) >= target:
                self.reached.set()


def small_config(tmp_path: Path) -> Path:
    """The repo's config with a short daily list, so 20,000 messages stay quick to move."""
    text = (ROOT / "config" / "digest.toml").read_text(encoding="utf-8")
    path = tmp_path / "digest.toml"
    path.write_text(text.replace("max_articles = 12", "max_articles = 3", 1), encoding="utf-8")
    return path


def add_subscribers(app: App, count: int, now: datetime) -> None:
    with app.store.engine.begin() as tx:
        list_id = tx.execute(select(lists.c.id).where(lists.c.slug == "daily")).scalar_one()
        tx.execute(
            insert(subscribers),
            [
                {
                    "email": f"reader{i}@example.com",
                    "email_key": f"reader{i}@example.com",
                    "name": f"Győri Ödön {i}",
                    "locale": "hu",
                    "timezone": "",
                    "created_at": now,
                }
                for i in range(count)
            ],
        )
        ids = tx.execute(
            select(subscribers.c.id).where(subscribers.c.email.like("reader%@example.com"))
        ).scalars()
        tx.execute(
            insert(subscriptions),
            [
                {
                    "subscriber_id": sid,
                    "list_id": list_id,
                    "status": SubscriptionStatus.ACTIVE,
                    "created_at": now,
                    "updated_at": now,
                }
                for sid in ids
            ],
        )


def test_five_kills_lose_nobody_and_double_little(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    handler, port = CountingHandler(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    env = {
        **os.environ,
        "DIGEST_CONFIG": str(small_config(tmp_path)),
        "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'd.sqlite3'}",
        "DIGEST_SMTP__PORT": str(port),
        "DIGEST_DELIVERY__CONNECTIONS": str(CONNECTIONS),
        "DIGEST_DELIVERY__COMMIT_GROUP": str(COMMIT_GROUP),
    }
    send = [sys.executable, "-m", "digest", "send", "--list", "daily"]
    try:
        subprocess.run(
            [sys.executable, "-m", "digest", "init", "--seed"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        app = App(
            load_settings(Path(env["DIGEST_CONFIG"])).model_copy(
                update={"database_url": env["DIGEST_DATABASE_URL"]}
            )
        )
        add_subscribers(app, RECIPIENTS, datetime.now(UTC))
        total = len(app.store.active_subscribers("daily"))
        kills = 0
        for _ in range(KILLS):
            handler.arm(len(handler.ids) + rng.randrange(500, 3000))
            sender = subprocess.Popen(
                send, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            handler.reached.wait(timeout=120)
            if sender.poll() is None:
                sender.send_signal(signal.SIGKILL)
                kills += 1
            sender.wait(timeout=30)
        finish = subprocess.run(
            send, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
        )
        assert finish.returncode == 0, finish.stderr
    finally:
        controller.stop()

    edition = app.store.latest_edition("daily")
    assert edition is not None
    rows = app.store.deliveries(edition.id)
    received = Counter(handler.ids)
    ledger_ids = {row["message_id"] for row in rows}
    duplicates = sum(n - 1 for n in received.values())
    print(
        f"seed={seed} kills={kills} messages={len(handler.ids)} "
        f"recipients={total} duplicates={duplicates}"
    )
    assert kills == KILLS, f"the send ended before a kill (seed {seed})"
    assert len(rows) == total
    assert {row["state"] for row in rows} == {DeliveryState.SENT}
    assert set(received) == ledger_ids  # everyone got it, and nothing the ledger does not know
    assert duplicates <= kills * (CONNECTIONS + COMMIT_GROUP), f"seed {seed}"
