"""SIGTERM and SIGINT during `digest send`: what is in flight finishes, nothing is doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from digest.mail.transport import free_port
from digest.models import DeliveryState
from digest.operations.publisher import Publisher
from tests.conftest import ROOT, settings_for


class SlowHandler:
    """Accepts every message after a short pause, and says when the third one arrived."""

    def __init__(self) -> None:
        self.message_ids: list[str] = []
        self.third = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.1)
        for line in envelope.original_content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                self.message_ids.append(line.split(b":", 1)[1].strip().decode())
        if len(self.message_ids) >= 3:
            self.third.set()
        return "250 2.0.0 Ok"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_drains_and_leaves_no_duplicate(tmp_path: Path, signum: int) -> None:
    handler, port = SlowHandler(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'd.sqlite3'}",
        "DIGEST_SMTP__PORT": str(port),
        "DIGEST_DELIVERY__CONNECTIONS": "2",
        "DIGEST_DELIVERY__COMMIT_GROUP": "5",
    }
    try:
        subprocess.run(
            [sys.executable, "-m", "digest", "init", "--seed"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        sender = subprocess.Popen(
            [sys.executable, "-m", "digest", "send", "--list", "daily"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert handler.third.wait(timeout=30)
        sender.send_signal(signum)
        _, stderr = sender.communicate(timeout=30)
        assert sender.returncode == 0, stderr
        assert "stopped on request" in stderr
        publisher = Publisher(
            settings_for(tmp_path, port).model_copy(
                update={"database_url": env["DIGEST_DATABASE_URL"]}
            )
        )
        edition = publisher.store.latest_edition("daily")
        assert edition is not None
        rows = publisher.store.deliveries(edition.id)
        states = {row["state"] for row in rows}
        assert DeliveryState.SENDING not in states
        sent = {row["message_id"] for row in rows if row["state"] == DeliveryState.SENT}
        assert sent == set(handler.message_ids)  # the ledger agrees with the server
        assert len(sent) < len(rows)  # it really stopped early
        finish = subprocess.run(
            [sys.executable, "-m", "digest", "send", "--list", "daily"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert finish.returncode == 0, finish.stderr
        assert sorted(handler.message_ids) == sorted(row["message_id"] for row in rows)
    finally:
        controller.stop()
