"""The command line as a user meets it: help with examples, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from digest.errors import ExitCode
from digest.mail.transport import free_port
from tests.conftest import ROOT, RecordingHandler
from tests.support.cli import run

COMMANDS = [
    "init",
    "config",
    "send",
    "preview",
    "capture",
    "status",
    "resume",
    "retry",
    "edition approve",
    "dkim keygen",
    "web",
    "run",
    "worker",
    "subscribers import",
    "subscribers add",
    "subscribers remove",
    "subscribers list",
    "subscribers export",
    "bounces",
    "unsubscribe-mail",
    "articles import",
    "articles add",
    "articles list",
]


@pytest.mark.parametrize("command", COMMANDS, ids=COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = run(*command.split(), "--help")
    assert result.returncode == 0
    assert "Example:" in result.stdout


HEAVY = (
    "premailer",
    "sqlalchemy",
    "dkim",
    "cryptography",
    "dns",
    "starlette",
    "uvicorn",
    "aiosmtpd",
    "feedparser",
    "jinja2",
    "pydantic_settings",  # typer itself brings pydantic in for a command's options
    "apscheduler",
)


def test_help_loads_none_of_the_heavy_modules() -> None:
    """`digest --help` and a command's `--help` answer before any layer below the CLI loads."""
    script = (
        "import sys\n"
        "from digest.cli import main\n"
        "for args in (['--help'], ['send', '--help'], ['subscribers', 'import', '--help']):\n"
        "    sys.argv = ['digest', *args]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert "Example:" in done.stdout
    assert done.stdout.splitlines()[-1] == "[]", done.stdout.splitlines()[-1]


def test_status_loads_neither_rendering_nor_sending(tmp_path: Path) -> None:
    """`digest status` reads the settings and the database only: the rendering, the story
    grouping and the sender (premailer, numpy, the Publisher and its delivery engine) stay
    unloaded, which keeps its start near half a second."""
    env = {**os.environ, "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'digest.sqlite3'}"}
    subprocess.run(
        [sys.executable, "-m", "digest", "init"], env=env, cwd=ROOT, check=True, capture_output=True
    )
    script = (
        "import sys\n"
        "from digest.cli import main\n"
        "sys.argv = ['digest', 'status']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('premailer', 'numpy')"
        " or m in ('digest.operations.publisher', 'digest.operations.delivery')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert "lists:" in done.stdout, done.stderr
    assert done.stdout.splitlines()[-1] == "[]", done.stdout.splitlines()[-1]


@pytest.mark.parametrize("command", COMMANDS, ids=COMMANDS)
def test_every_command_is_in_the_readme(command: str) -> None:
    assert f"digest {command}" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["send", "--list", "nope"], {}, 3, "unknown list 'nope'"),
        (
            ["send", "--list", "daily"],
            {"DIGEST_SMTP__PORT": str(free_port())},  # nothing listens there
            7,
            "cannot reach SMTP server 127.0.0.1:",
        ),
        (["config"], {"DIGEST_SMTP__SECURITY": "sometimes"}, 2, "DIGEST_SMTP__SECURITY"),
        (["--config", "/nonexistent.toml", "status"], {}, 2, "does not exist"),
        (["preview", "--list", "daily", "--at", "yesterday"], {}, 2, "not an ISO date-time"),
        (
            ["preview", "--list", "daily", "--subscriber", "nobody@example.com"],
            {},
            3,
            "no subscriber",
        ),
    ],
    ids=[
        "unknown-list",
        "smtp-unreachable",
        "bad-env-setting",
        "missing-config",
        "bad-time",
        "unknown-subscriber",
    ],
)
def test_user_mistakes_are_one_line_and_a_nonzero_exit(
    cli_env: dict[str, str], args: list[str], env: dict[str, str], code: int, message: str
) -> None:
    result = run(*args, env={**cli_env, **env})
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_bad_toml_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[smtp\nport = 1\n", encoding="utf-8")
    result = run("--config", str(bad), "config")
    assert (
        result.returncode == 2
        and "not valid TOML" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_config_masks_secrets_and_env_overrides_nested_keys() -> None:
    result = run(
        "config",
        env={
            "DIGEST_SMTP__PASSWORD": "hunter2",
            "DIGEST_SMTP__PORT": "2525",
            "DIGEST_SITE__UNSUBSCRIBE_SECRET": "s3cret",
        },
    )
    assert result.returncode == 0
    shown = json.loads(result.stdout)
    assert shown["smtp"]["port"] == 2525
    assert shown["smtp"]["password"] == "**********"
    assert shown["site"]["unsubscribe_secret"] == "**********"
    assert shown["site"]["name"] == "Budapest Post"  # the rest of the file still applies
    assert "hunter2" not in result.stdout and "s3cret" not in result.stdout
    assert [item["slug"] for item in shown["lists"]] == ["daily", "business", "weekly"]


def test_send_dry_run_and_test_send_leave_the_ledger_alone(
    cli_env: dict[str, str], smtp_server: tuple[RecordingHandler, int]
) -> None:
    dry = run("send", "--list", "daily", "--dry-run", env=cli_env)
    assert dry.returncode == 0 and "would go to" in dry.stdout
    assert not smtp_server[0].messages
    test = run("send", "--list", "daily", "--to", "editor@budapestpost.example", env=cli_env)
    assert test.returncode == 0, test.stderr
    (message,) = smtp_server[0].messages
    assert message.recipients == ["editor@budapestpost.example"]
    assert message.message["Subject"].startswith("[Test] ")
    status = run("status", env=cli_env)
    assert "no editions yet" in status.stdout


def test_send_then_status_and_preview(
    cli_env: dict[str, str], smtp_server: tuple[RecordingHandler, int], tmp_path: Path
) -> None:
    sent = run("send", "--list", "daily", env=cli_env)
    assert sent.returncode == 0, sent.stderr
    count = len(smtp_server[0].messages)
    assert f"{count} sent" in sent.stdout
    status = run("status", env=cli_env)
    assert "daily" in status.stdout and f"{count} sent" in status.stdout
    preview = run("preview", "--list", "daily", "--out", str(tmp_path / "p"), env=cli_env)
    assert preview.returncode == 0
    paths = [Path(line.strip()) for line in preview.stdout.splitlines() if line.startswith("  ")]
    assert [p.suffix for p in paths] == [".html", ".txt", ".eml", ".json"] and all(
        p.is_file() for p in paths
    )


def test_a_send_with_permanent_failures_exits_10(
    cli_env: dict[str, str], smtp_server: tuple[RecordingHandler, int]
) -> None:
    handler = smtp_server[0]
    handler.refuse["odon.gyori@example.hu"] = "550 5.1.1 No such user"
    result = run("send", "--list", "daily", env=cli_env)
    assert result.returncode == ExitCode.DELIVERIES_FAILED, result.stderr
    assert "1 failed" in result.stdout and "Traceback" not in result.stderr
    assert handler.messages  # the others were sent


def test_the_readme_lists_every_exit_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code in ExitCode:
        assert f"| {code.value} | `{code.name}` |" in readme, code


def test_nothing_due_needs_no_relay(cli_env: dict[str, str]) -> None:
    sent = run("send", "--list", "daily", env=cli_env)
    assert sent.returncode == 0, sent.stderr
    down = {**cli_env, "DIGEST_SMTP__PORT": str(free_port())}  # nothing listens there
    for command in (["resume", "1"], ["retry", "1", "--failed"], ["send", "--list", "daily"]):
        again = run(*command, env=down)
        assert again.returncode == 0, (command, again.stderr)
        assert "nothing was due" in again.stdout, (command, again.stdout)
