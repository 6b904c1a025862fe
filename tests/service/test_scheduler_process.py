"""`digest run` as a real process against a real SMTP server: signals, two processes on one
database, `digest status`, help. Every wait is on a server-side event, bounded."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from digest.config import load_settings
from digest.mail.transport import free_port
from digest.models import DeliveryState
from digest.operations.publisher import Publisher
from tests.conftest import ROOT, settings_for

SMTP_TIMEOUT = 10.0


class Server:
    """Keeps each message's Message-ID; can slow each message down, or hold every DATA until
    `hold_for` senders have probed the relay (a session that quits without sending)."""

    def __init__(self, *, delay: float = 0.0, hold_for: int = 0) -> None:
        self.delay, self.hold_for = delay, hold_for
        self.ids: list[str] = []
        self.lock = threading.Lock()
        self.target = 0
        self.reached = threading.Event()
        self.probed = threading.Event()
        self._mailed: set[Any] = set()  # sessions, kept alive so no id is ever reused
        self._probes = 0
        self._gate: asyncio.Event | None = None  # made in the server's loop, used only there

    def _opened(self) -> asyncio.Event:
        if self._gate is None:
            self._gate = asyncio.Event()
        return self._gate

    def arm(self, target: int) -> None:
        with self.lock:
            self.target = target
            self.reached.clear()
            if len(self.ids) >= target:
                self.reached.set()

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        if session not in self._mailed:
            self._probes += 1
            if self._probes >= self.hold_for:
                self.probed.set()
                self._opened().set()
        return "221 Bye"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self._mailed.add(session)
        if self.hold_for:
            # On a timeout the test fails on `probed`, not on a hung server.
            with suppress(TimeoutError):
                await asyncio.wait_for(self._opened().wait(), timeout=30)
        if self.delay:
            await asyncio.sleep(self.delay)
        head = envelope.original_content.split(b"\r\n\r\n", 1)[0]
        found = next(line for line in head.split(b"\r\n") if line[:11].lower() == b"message-id:")
        with self.lock:
            self.ids.append(found[11:].strip().decode())
            if self.target and len(self.ids) >= self.target:
                self.reached.set()
        return "250 2.0.0 Ok"


@contextmanager
def serving(handler: Server) -> Iterator[int]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def digest(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def start_service(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "run", "--log-format", "json"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def service_env(tmp_path: Path, port: int, **more: str) -> dict[str, str]:
    """A database seeded now, and only the daily list, due this very minute."""
    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": settings_for(tmp_path, port).database_url,
        "DIGEST_SMTP__PORT": str(port),
        "DIGEST_SMTP__TIMEOUT": str(SMTP_TIMEOUT),
        **more,
    }
    seeded = digest("init", "--seed", env=env)
    assert seeded.returncode == 0, seeded.stderr
    daily = load_settings(ROOT / "config" / "digest.toml").list("daily")
    local = datetime.now(daily.zone)
    due_now = daily.model_dump(mode="json") | {"schedule": f"{local.minute} {local.hour} * * *"}
    return env | {"DIGEST_LISTS": json.dumps([due_now])}


def ledger(tmp_path: Path, port: int) -> tuple[Publisher, list[dict[str, Any]]]:
    publisher = Publisher(settings_for(tmp_path, port))
    edition = publisher.store.latest_edition("daily")
    assert edition is not None
    return publisher, publisher.store.deliveries(edition.id)


def json_lines(stderr: str) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in stderr.splitlines()]
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    return entries


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_drains_in_flight_and_exits_0(tmp_path: Path, signum: int) -> None:
    handler = Server(delay=0.1)
    handler.arm(3)
    with serving(handler) as port:
        env = service_env(
            tmp_path,
            port,
            DIGEST_DELIVERY__CONNECTIONS="2",
            DIGEST_DELIVERY__COMMIT_GROUP="5",
        )
        service = start_service(env)
        assert handler.reached.wait(timeout=60), service.stderr
        signalled = time.monotonic()
        service.send_signal(signum)
        _, stderr = service.communicate(timeout=60)
        took = time.monotonic() - signalled
        assert service.returncode == 0, stderr
        assert took < SMTP_TIMEOUT
        messages = [entry["message"] for entry in json_lines(stderr)]
        assert any(m.startswith(signal.Signals(signum).name) for m in messages)
        assert "stopped" in messages

        _, rows = ledger(tmp_path, port)
        assert DeliveryState.SENDING not in {row["state"] for row in rows}
        sent = {row["message_id"] for row in rows if row["state"] == DeliveryState.SENT}
        assert sent == set(handler.ids)  # the ledger agrees with the server
        assert len(sent) < len(rows)  # it really stopped early

        handler.arm(len(rows))  # a restart's first sweep delivers the rest
        restarted = start_service(env)
        assert handler.reached.wait(timeout=60)
        restarted.send_signal(signal.SIGTERM)
        _, stderr = restarted.communicate(timeout=60)
        assert restarted.returncode == 0, stderr
    _, rows = ledger(tmp_path, port)
    assert sorted(handler.ids) == sorted(row["message_id"] for row in rows)


def test_two_run_processes_send_each_subscriber_once(tmp_path: Path) -> None:
    handler = Server(hold_for=2)  # nothing is accepted until both processes are sending
    with serving(handler) as port:
        env = service_env(
            tmp_path,
            port,
            DIGEST_DELIVERY__CONNECTIONS="2",
            DIGEST_DELIVERY__COMMIT_GROUP="2",
            DIGEST_DELIVERY__BATCH_SIZE="3",
        )
        expected = len(Publisher(settings_for(tmp_path, port)).store.active_subscribers("daily"))
        handler.arm(expected)
        services = [start_service(env) for _ in range(2)]
        assert handler.probed.wait(timeout=60)
        assert handler.reached.wait(timeout=60)
        for service in services:
            service.send_signal(signal.SIGTERM)
        for service in services:
            _, stderr = service.communicate(timeout=60)
            assert service.returncode == 0, stderr
    publisher, rows = ledger(tmp_path, port)
    assert Counter(handler.ids) == Counter({row["message_id"]: 1 for row in rows})
    assert len(rows) == expected and {row["state"] for row in rows} == {DeliveryState.SENT}
    assert len(publisher.store.recent_runs(list_slug="daily")) == 1


def test_status_shows_each_lists_next_run_and_last_edition(tmp_path: Path) -> None:
    handler = Server()
    with serving(handler) as port:
        env = {
            **os.environ,
            "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'd.sqlite3'}",
            "DIGEST_SMTP__PORT": str(port),
        }
        assert digest("init", "--seed", env=env).returncode == 0
        assert digest("send", "--list", "daily", env=env).returncode == 0
        shown = digest("status", env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    at = next(n for n, line in enumerate(lines) if line.startswith("  daily: next run "))
    assert lines[at].endswith("(0 7 * * *, Europe/Budapest)")
    assert lines[at + 1].endswith("`digest send` (edition #1)")  # a send by hand is a run
    assert lines[at + 2].startswith("    last edition: #1 of ")
    assert any(line.startswith("  weekly: next run ") for line in lines)


def test_run_has_help_with_an_example_and_is_in_the_readme() -> None:
    helped = digest("run", "--help", env=dict(os.environ))
    assert helped.returncode == 0 and "Example:" in helped.stdout
    assert "--log-format" in helped.stdout
    assert "digest run" in (ROOT / "README.md").read_text(encoding="utf-8")
