"""A user's mistake is one line and a non-zero exit, never a traceback; nothing is created."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from digest.cli import main
from tests.cli.test_cli import COMMANDS
from tests.conftest import ROOT, RecordingHandler
from tests.support.cli import run


def one_line_error(result: object, code: int | None = None) -> str:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    returncode: int = result.returncode  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr
    assert returncode != 0, stderr
    if code is not None:
        assert returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("DIGEST_LISTS", "notjson"), ("DIGEST_SITE__PREVIOUS_UNSUBSCRIBE_SECRETS", "notjson")],
    ids=["lists", "previous-secrets"],
)
def test_json_variables_that_are_not_json_name_the_variable(variable: str, value: str) -> None:
    line = one_line_error(run("config", env={variable: value}), code=2)
    assert variable in line


def test_a_number_variable_names_the_variable() -> None:
    line = one_line_error(run("config", env={"DIGEST_SMTP__PORT": "abc"}), code=2)
    assert "DIGEST_SMTP__PORT" in line and "digest.toml" not in line


def test_a_broken_subject_template_is_refused_when_the_config_loads(tmp_path: Path) -> None:
    lists = [{"slug": "daily", "name": "Daily", "subject": "{{ lead_title | nosuchfilter }}"}]
    line = one_line_error(run("config", env={"DIGEST_LISTS": json.dumps(lists)}), code=2)
    assert "subject" in line


def test_status_on_no_database_says_init_and_creates_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("status", env={"DIGEST_DATABASE_URL": "sqlite:///var/none.sqlite3"}, cwd=empty)
    assert "Traceback" not in result.stderr and result.returncode != 0
    assert "digest init" in result.stderr
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_preview_out_that_cannot_be_written(
    cli_env: dict[str, str], tmp_path: Path, where: str
) -> None:
    taken = tmp_path / "taken.txt"
    taken.write_text("x", encoding="utf-8")
    out = taken if where == "file" else taken / "sub"
    line = one_line_error(run("preview", "--list", "daily", "--out", str(out), env=cli_env))
    assert str(taken) in line


def test_bracketed_text_is_shown_literally(
    cli_env: dict[str, str], smtp_server: tuple[RecordingHandler, int]
) -> None:
    record = {
        "id": "tty-1",
        "title": "Budget [/b] row [Breaking]",
        "url": "https://budapestpost.example/a/brackets",
    }
    assert run("articles", "add", json.dumps(record), env=cli_env).returncode == 0
    listed = run("articles", "list", env=cli_env)
    assert listed.returncode == 0 and "Budget [/b] row [Breaking]" in listed.stdout
    sent = run("send", "--list", "daily", env=cli_env)
    assert sent.returncode == 0 and "Traceback" not in sent.stderr, sent.stderr
    status = run("status", env=cli_env)
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr


def test_web_on_a_port_in_use_is_one_line(cli_env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = one_line_error(run("web", "--port", str(port), env=cli_env))
    assert str(port) in line and "in use" in line


GARBAGE = ["--list", "[/b]", "--nonsense", "12x", ""]


@pytest.mark.parametrize("command", COMMANDS, ids=COMMANDS)
def test_garbage_arguments_never_give_a_traceback(
    command: str,
    cli_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # In this process, through the console entry point itself: any exception other than its
    # own exit escapes `main` and fails the test, as a traceback would on a terminal.
    for name, value in cli_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["digest", *command.split(), *GARBAGE])
    with pytest.raises(SystemExit) as exited:
        main()
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr, stderr
    assert exited.value.code not in (0, None), stderr
    assert len(stderr.strip().splitlines()) <= 8, stderr
