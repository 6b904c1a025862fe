"""Crash safety: SIGKILL the sender five times in a 1,500-recipient send, restart it each time.

Nobody may end with no message, each kill may double at most (connections + commit group)
messages, and the ledger must agree with what the server stored.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller

from digest.config import load_settings
from digest.mail.transport import free_port
from digest.models import DeliveryState
from digest.operations.publisher import Publisher
from tests.conftest import ROOT
from tests.support.bulk import CountingHandler, add_subscribers

# Five kills at most 250 messages into a run leave at least 250 for the run that finishes, so
# every kill lands mid-send; more recipients would prove nothing more.
RECIPIENTS = 1_500
KILLS = 5
CONNECTIONS = 4
COMMIT_GROUP = 50


def small_config(tmp_path: Path) -> Path:
    """The repo's config with a short daily list, so the messages stay quick to move."""
    text = (ROOT / "config" / "digest.toml").read_text(encoding="utf-8")
    path = tmp_path / "digest.toml"
    path.write_text(text.replace("max_articles = 12", "max_articles = 3", 1), encoding="utf-8")
    return path


def test_five_kills_lose_nobody_and_double_little(tmp_path: Path, database_url: str) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    handler, port = CountingHandler(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    env = {
        **os.environ,
        "DIGEST_CONFIG": str(small_config(tmp_path)),
        "DIGEST_DATABASE_URL": database_url,
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
        publisher = Publisher(
            load_settings(Path(env["DIGEST_CONFIG"])).model_copy(
                update={"database_url": env["DIGEST_DATABASE_URL"]}
            )
        )
        add_subscribers(publisher.store.engine, RECIPIENTS, now=datetime.now(UTC))
        total = len(publisher.store.active_subscribers("daily"))
        kills = 0
        for _ in range(KILLS):
            handler.arm(len(handler.ids) + rng.randrange(100, 250))
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

    edition = publisher.store.latest_edition("daily")
    assert edition is not None
    rows = publisher.store.deliveries(edition.id)
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
