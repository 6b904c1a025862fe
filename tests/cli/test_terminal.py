"""The CLI as people run it: in a terminal, where rich draws a progress bar.

Output to a pipe hides a whole class of faults (a bar's column that cannot format a rate
not yet known crashed every `digest send` in a terminal), so these run under a pseudo-terminal.
"""

from __future__ import annotations

import os
import pty
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digest.mail.transport import free_port
from tests.conftest import ROOT, RecordingHandler
from tests.support.cli import cli_environment, run
from tests.support.databases import copy_sqlite

SUBSCRIBERS = 600  # a few seconds of sending: the rate goes from unknown to known


def on_terminal(command: list[str], *, env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run `command` with stdin, stdout and stderr on a pseudo-terminal; exit code, output."""
    leader, follower = pty.openpty()
    os.set_blocking(leader, False)
    process = subprocess.Popen(
        command, stdin=follower, stdout=follower, stderr=follower, cwd=ROOT, env=env
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    code = process.wait(timeout=max(deadline - time.monotonic(), 1))
    os.close(leader)
    return code, b"".join(chunks).decode("utf-8", "replace")


def in_terminal(
    *args: str, env: dict[str, str], columns: int = 100, timeout: float = 120
) -> tuple[int, str]:
    """`digest ARGS` on a terminal of `columns` columns."""
    size = {"COLUMNS": str(columns), "LINES": "40", "TERM": "xterm"}
    return on_terminal(
        [sys.executable, "-m", "digest", *args], env={**os.environ, **env, **size}, timeout=timeout
    )


@pytest.fixture(scope="module")
def crowd_database(tmp_path_factory: pytest.TempPathFactory, seeded_database: Path) -> Path:
    """The seeds plus enough subscribers on `daily` that the bar really draws, made once."""
    folder = tmp_path_factory.mktemp("crowd")
    database = folder / "crowd.sqlite3"
    copy_sqlite(seeded_database, database)
    env = {"DIGEST_DATABASE_URL": f"sqlite:///{database}"}
    people = folder / "people.csv"
    people.write_text(
        "email,name\n" + "".join(f"reader{n}@example.hu,Reader {n}\n" for n in range(SUBSCRIBERS)),
        encoding="utf-8",
    )
    loaded = run("subscribers", "import", str(people), "--list", "daily", env=env)
    assert loaded.returncode == 0, loaded.stderr
    return database


@pytest.fixture
def crowd(
    crowd_database: Path, tmp_path: Path, smtp_server: tuple[RecordingHandler, int]
) -> dict[str, str]:
    """A copy of the crowd database for one test, pointed at this test's SMTP server."""
    copy_sqlite(crowd_database, tmp_path / "tty.sqlite3")
    return cli_environment(tmp_path / "tty.sqlite3", port=smtp_server[1], folder=tmp_path)


def test_send_draws_progress_in_a_terminal_and_exits_0(
    crowd: dict[str, str], smtp_server: tuple[RecordingHandler, int]
) -> None:
    code, screen = in_terminal("send", "--list", "daily", env=crowd)
    assert "Traceback" not in screen, screen
    assert code == 0, screen
    assert "sending" in screen and "–/s" in screen, screen  # drawn before the rate is known
    total = len(smtp_server[0].messages)
    assert re.search(rf"(?<!\d)0/{total}\b", screen), screen  # the total before any result
    assert re.search(r"\d+/s", screen), screen  # and after
    assert len(smtp_server[0].messages) >= SUBSCRIBERS


def test_dry_run_resume_retry_and_status_in_a_terminal(cli_env: dict[str, str]) -> None:
    code, screen = in_terminal("send", "--list", "daily", "--dry-run", env=cli_env)
    assert code == 0 and "Traceback" not in screen, screen
    code, screen = in_terminal("send", "--list", "daily", env=cli_env)
    assert code == 0 and "Traceback" not in screen, screen
    for args in (["resume", "1"], ["retry", "1", "--failed"], ["status"]):
        code, screen = in_terminal(*args, env=cli_env, columns=80)
        assert "Traceback" not in screen, (args, screen)
        assert code == 0, (args, screen)


def test_without_a_terminal_progress_is_logged_at_info(cli_env: dict[str, str]) -> None:
    result = run("send", "--list", "daily", env=cli_env)  # the first result is logged
    assert result.returncode == 0, result.stderr
    assert "INFO digest.cli.progress:" in result.stderr and "done (" in result.stderr
    assert "WARNING digest.cli.progress" not in result.stderr


def test_progress_counts_toward_the_whole_list_while_it_is_still_being_queued(
    crowd: dict[str, str],
) -> None:
    result = run("send", "--list", "daily", env=crowd)
    assert result.returncode == 0, result.stderr
    # More subscribers than the first chunk: the total is known before queueing has finished.
    progress = re.search(r"(\d+) of (\d+) done", result.stderr)
    sent = re.search(r"(\d+) sent$", result.stdout.strip())
    assert progress is not None and sent is not None, (result.stdout, result.stderr)
    assert int(progress[2]) == int(sent[1]) > 0


def test_make_demo_in_a_terminal_twice() -> None:
    if not (ROOT / ".venv" / "bin" / "digest").exists():
        pytest.skip("make demo needs the project's .venv (make test creates it)")
    port = free_port()  # the Makefile points digest at its capture server on this port
    demo_env = {**os.environ, "TERM": "xterm"}
    demo_env.pop("DIGEST_DATABASE_URL", None)  # the demo's own database, made afresh each run
    demo_env.pop("DIGEST_SMTP__PORT", None)
    captured = []
    for _ in range(2):  # the second run shows the mail again: it does not find it all sent
        code, screen = on_terminal(
            ["script", "-q", "-e", "-c", f"make demo CAPTURE_PORT={port}", "/dev/null"],
            env=demo_env,
            timeout=180,
        )
        assert "Traceback" not in screen, screen
        assert code == 0, screen
        found = re.search(r"Captured mail: (\d+) messages", screen)
        assert found is not None, screen
        captured.append(int(found[1]))
    assert captured[0] == captured[1] > 0


def test_make_demo_refuses_a_port_another_server_holds(tmp_path: Path) -> None:
    if not (ROOT / ".venv" / "bin" / "digest").exists():
        pytest.skip("make demo needs the project's .venv (make test creates it)")
    with socket.create_server(("127.0.0.1", 0)) as other:  # a server the mail must not reach
        port = other.getsockname()[1]
        env = {**os.environ, "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}
        code, screen = on_terminal(
            ["script", "-q", "-e", "-c", f"make demo CAPTURE_PORT={port}", "/dev/null"],
            env=env,
            timeout=60,
        )
    assert code != 0, screen
    assert f"port {port} is taken" in screen and "CAPTURE_PORT=8026" in screen, screen
    assert not (tmp_path / "demo.sqlite3").exists()  # stopped before `digest init` and any send
