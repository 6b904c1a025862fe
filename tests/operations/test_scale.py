"""Scale-out: three `digest worker`s and two `digest run`s share one database.

1,000 subscribers, one worker SIGKILLed mid-send: every subscriber gets the edition, the
duplicates stay within the engine's bound, and no row is left claimed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from digest.mail.transport import free_port
from digest.models import DeliveryState
from digest.store import Store
from digest.store.schema import make_engine
from tests.conftest import ROOT
from tests.support.bulk import CountingHandler, add_subscribers

RECIPIENTS = 1_000
CONNECTIONS = 2
COMMIT_GROUP = 50


def scale_config(tmp_path: Path) -> Path:
    """The repo's config with a short daily list that is due every minute."""
    text = (ROOT / "config" / "digest.toml").read_text(encoding="utf-8")
    text = text.replace("max_articles = 12", "max_articles = 3", 1)
    text = text.replace('schedule = "0 7 * * *"', 'schedule = "* * * * *"', 1)
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")
    return path


# The shared-database case is PostgreSQL's; several processes on one SQLite file are covered by
# tests/test_crash.py and tests/test_scheduler_process.py.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_workers_and_schedulers_share_the_work(tmp_path: Path, database_url: str) -> None:
    handler, port = CountingHandler(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    env = {
        **os.environ,
        "DIGEST_CONFIG": str(scale_config(tmp_path)),
        "DIGEST_DATABASE_URL": database_url,
        "DIGEST_SMTP__PORT": str(port),
        "DIGEST_DELIVERY__CONNECTIONS": str(CONNECTIONS),
        "DIGEST_DELIVERY__COMMIT_GROUP": str(COMMIT_GROUP),
        "DIGEST_SCHEDULER__SWEEP_SECONDS": "1",
    }
    digest = [sys.executable, "-m", "digest"]
    subprocess.run([*digest, "init", "--seed"], env=env, cwd=ROOT, check=True, capture_output=True)
    store = Store(make_engine(database_url))
    add_subscribers(store.engine, RECIPIENTS, now=datetime.now(UTC))
    total = len(store.active_subscribers("daily"))
    logs = [(tmp_path / f"p{i}.log").open("w") for i in range(5)]
    schedulers = [
        subprocess.Popen([*digest, "run"], env=env, cwd=ROOT, stdout=logs[i], stderr=logs[i])
        for i in range(2)
    ]
    workers = [
        subprocess.Popen(
            [*digest, "worker", "--poll", "0.5"], env=env, cwd=ROOT, stdout=logs[i], stderr=logs[i]
        )
        for i in range(2, 5)
    ]
    try:
        handler.arm(total // 4)
        assert handler.reached.wait(timeout=180), "sending never started"
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=30)
        deadline = time.monotonic() + 300
        while True:  # bounded: wait for the ledger to show every delivery done
            edition = store.latest_edition("daily")
            counts = store.delivery_counts(edition.id) if edition else {}
            if counts.get(DeliveryState.SENT, 0) == total:
                break
            assert time.monotonic() < deadline, f"not finished: {counts}"
            time.sleep(0.5)
    finally:
        for process in [*schedulers, *workers[1:]]:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=60) for process in [*schedulers, *workers[1:]]]
        controller.stop()
        for handle in logs:
            handle.close()
    assert codes == [0, 0, 0, 0], [p.read_text() for p in sorted(tmp_path.glob("p*.log"))]
    assert edition is not None
    editions = [e for e in store.editions_with_counts(limit=50) if e.edition.list_slug == "daily"]
    assert len(editions) == 1  # two schedulers, one edition
    rows = store.deliveries(edition.id)
    assert {row["state"] for row in rows} == {DeliveryState.SENT}  # nothing left claimed
    received = Counter(i for i in handler.ids if i.startswith("<daily."))  # other lists may run
    assert set(received) == {row["message_id"] for row in rows}  # nobody lost
    duplicates = sum(n - 1 for n in received.values())
    print(f"recipients={total} messages={len(handler.ids)} duplicates={duplicates}")
    assert duplicates <= CONNECTIONS + COMMIT_GROUP  # one kill
