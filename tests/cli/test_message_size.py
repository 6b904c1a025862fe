"""`preview` and `send` say how big a copy is, and send warns or refuses above the limit."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from digest.errors import ExitCode
from tests.conftest import RecordingHandler
from tests.support.cli import run

SIZE = re.compile(r"message size (\d+) KB")
# The seeded daily edition is about 43 KB: a limit of 20 KB makes it oversize.
SMALL_LIMIT = {"DIGEST_DELIVERY__MAX_MESSAGE_KB": "20"}


def shown_kb(output: str) -> int:
    (found,) = SIZE.findall(output)
    return int(found)


def test_preview_prints_the_size_of_the_eml_it_wrote(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    preview = run("preview", "--list", "daily", "--out", str(tmp_path / "p"), env=cli_env)
    assert preview.returncode == 0, preview.stderr
    (eml,) = (tmp_path / "p").glob("*.eml")
    assert shown_kb(preview.stdout) == -(-eml.stat().st_size // 1000)
    assert "warning" not in preview.stderr
    small = run(
        "preview", "--list", "daily", "--out", str(tmp_path / "q"), env=cli_env | SMALL_LIMIT
    )
    assert small.returncode == 0, small.stderr
    assert "is over [delivery] max_message_kb = 20 KB: Gmail clips" in small.stderr


def test_send_under_the_limit_prints_the_size_and_no_warning(
    cli_env: dict[str, str], smtp_server: tuple[RecordingHandler, int]
) -> None:
    sent = run("send", "--list", "daily", env=cli_env)
    assert sent.returncode == 0, sent.stderr
    sizes = [len(message.data) for message in smtp_server[0].messages]
    # A stand-in reader is measured; real copies differ by a name and tokens only.
    assert shown_kb(sent.stdout) in {-(-size // 1000) for size in sizes}
    assert "max_message_kb" not in sent.stderr


def test_send_over_the_limit_warns_once_and_sends(
    cli_env: dict[str, str], smtp_server: tuple[RecordingHandler, int]
) -> None:
    sent = run("send", "--list", "daily", env=cli_env | SMALL_LIMIT)
    assert sent.returncode == 0, sent.stderr
    assert shown_kb(sent.stdout) > 20
    warnings = [line for line in sent.stderr.splitlines() if "max_message_kb = 20 KB" in line]
    assert len(warnings) == 1, sent.stderr
    assert smtp_server[0].messages


def test_send_over_the_limit_with_refuse_queues_nothing(
    cli_env: dict[str, str], smtp_server: tuple[RecordingHandler, int]
) -> None:
    refused = run(
        "send",
        "--list",
        "daily",
        env=cli_env | SMALL_LIMIT | {"DIGEST_DELIVERY__OVERSIZE": "refuse"},
    )
    assert refused.returncode == ExitCode.RENDER, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "nothing was queued" in lines[0], refused.stderr
    assert "Traceback" not in refused.stderr
    assert not smtp_server[0].messages
    database = cli_env["DIGEST_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM deliveries").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM editions").fetchone() == (0,)
