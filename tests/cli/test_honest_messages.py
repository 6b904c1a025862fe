"""What the CLI says is what happened: counts, due work, skipped sends, a status that fits.

Each test runs `digest` as a user would, against the seeds and a real SMTP server, and reads
what it printed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.errors import ExitCode
from digest.mail.transport import free_port
from digest.models import DeliveryState, EditionStatus
from digest.operations.status import shown_status
from tests.cli.test_terminal import in_terminal
from tests.conftest import RecordingHandler
from tests.support.cli import run


def test_a_second_init_seed_says_nothing_new(cli_env: dict[str, str]) -> None:
    again = run("init", "--seed", env=cli_env)
    assert again.returncode == 0, again.stderr
    assert "seeds: 0 new articles, 0 new subscribers, 0 new subscriptions" in again.stdout


def test_dry_run_on_a_finished_edition_says_nothing_is_due(cli_env: dict[str, str]) -> None:
    assert run("send", "--list", "daily", env=cli_env).returncode == 0
    dry = run("send", "--list", "daily", "--dry-run", env=cli_env)
    assert dry.returncode == 0, dry.stderr
    assert "nothing is due" in dry.stdout and "would go to" not in dry.stdout, dry.stdout


def test_a_preview_with_nothing_new_says_send_would_skip_it(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    first = run("preview", "--list", "daily", "--out", str(tmp_path / "a"), env=cli_env)
    assert "would skip" not in first.stdout
    assert run("send", "--list", "daily", env=cli_env).returncode == 0
    # The next day (in any list's zone): the send took every seeded article, so nothing is new.
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    preview = run(
        "preview", "--list", "daily", "--at", tomorrow, "--out", str(tmp_path / "b"), env=cli_env
    )
    assert preview.returncode == 0, preview.stderr
    assert "`digest send` would skip this list now" in preview.stdout, preview.stdout


def test_status_shows_a_send_by_hand_as_the_last_run(cli_env: dict[str, str]) -> None:
    before = run("status", env=cli_env).stdout.splitlines()
    at = before.index(next(line for line in before if "daily: next run" in line))
    assert before[at + 1] == "    last run: none"
    assert run("send", "--list", "daily", env=cli_env).returncode == 0
    after = run("status", env=cli_env).stdout.splitlines()
    last_run, last_edition = after[at + 1], after[at + 2]
    assert re.fullmatch(
        r"    last run: \d{4}-\d\d-\d\d \d\d:\d\d \S+ `digest send` \(edition #1\)", last_run
    ), last_run
    assert last_edition.startswith("    last edition: #1 of ") and last_edition.endswith("done")


def test_status_at_80_columns_keeps_every_count_and_says_sending_while_rows_are_open(
    cli_env: dict[str, str], smtp_server: tuple[RecordingHandler, int]
) -> None:
    handler = smtp_server[0]
    handler.refuse["odon.gyori@example.hu"] = "451 4.7.1 Try again later"
    handler.refuse["ors.fuzfa@example.hu"] = "550 5.1.1 No such user"
    sent = run("send", "--list", "daily", env=cli_env)
    assert sent.returncode == ExitCode.DELIVERIES_FAILED, sent.stderr
    code, screen = in_terminal("status", env=cli_env, columns=80)
    assert code == 0 and "Traceback" not in screen, screen
    row = next(line for line in screen.splitlines() if line.lstrip().startswith("1 "))
    assert "sending" in row and "done" not in row, screen
    sent_count = len(handler.messages)
    for count in (f"{sent_count} sent", "1 deferred", "1 failed"):
        assert count in screen, (count, screen)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)  # colours and cursor moves
    assert all(len(line.rstrip()) <= 80 for line in shown.splitlines()), shown


@pytest.mark.parametrize(
    ("stored", "counts", "shown"),
    [
        (EditionStatus.DONE, {DeliveryState.QUEUED: 1, DeliveryState.SENT: 5}, "sending"),
        (EditionStatus.SENDING, {DeliveryState.SENT: 5, DeliveryState.FAILED: 1}, "done"),
        (EditionStatus.PAUSED, {DeliveryState.QUEUED: 3}, "paused"),
        (EditionStatus.SENDING, {DeliveryState.DEFERRED: 1}, "sending"),
        (EditionStatus.SENDING, {}, "sending"),
    ],
)
def test_the_status_shown_follows_the_ledger(
    stored: EditionStatus, counts: dict[str, int], shown: str
) -> None:
    assert shown_status(stored, counts) == shown


def test_worker_until_idle_says_what_it_did(
    cli_env: dict[str, str], smtp_server: tuple[RecordingHandler, int]
) -> None:
    idle = run("worker", "--until-idle", "--poll", "0.1", env=cli_env)
    assert idle.returncode == 0, idle.stderr
    assert "worker: nothing was due" in idle.stdout
    relay_down = {**cli_env, "DIGEST_SMTP__PORT": str(free_port())}
    queued = run("send", "--list", "daily", env=relay_down)
    assert queued.returncode == ExitCode.TRANSPORT, queued.stderr
    gave_up = run("worker", "--until-idle", "--poll", "0.1", env=relay_down)
    assert gave_up.returncode == ExitCode.TRANSPORT, gave_up.stderr
    assert "cannot reach SMTP server" in gave_up.stderr and "Traceback" not in gave_up.stderr
    worked = run("worker", "--until-idle", "--poll", "0.1", env=cli_env)
    assert worked.returncode == 0, worked.stderr
    count = len(smtp_server[0].messages)
    assert count > 0
    assert f"worker: edition #1 of daily: {count} sent" in worked.stdout, worked.stdout


@pytest.mark.parametrize("args", [["status"], ["subscribers", "export"]])
def test_without_a_database_nothing_is_printed_before_the_error(
    args: list[str], tmp_path: Path
) -> None:
    env = {"DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'none.sqlite3'}"}
    result = run(*args, env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert result.stdout == "", result.stdout
    assert "digest init" in result.stderr and "Traceback" not in result.stderr
