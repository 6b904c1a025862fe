"""`digest subscribers ...` and `digest bounces` as a user meets them, through a real process."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.cli import run
from tests.support.databases import copy_sqlite

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bounces"
COMMANDS = [
    "subscribers import",
    "subscribers add",
    "subscribers remove",
    "subscribers list",
    "subscribers export",
    "bounces",
]


@pytest.fixture
def env(empty_database: Path, tmp_path: Path) -> dict[str, str]:
    """`digest` on this test's own copy of a database that `digest init` made."""
    copy_sqlite(empty_database, tmp_path / "cli.sqlite3")
    return {"DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}


@pytest.mark.parametrize("command", COMMANDS, ids=COMMANDS)
def test_help_has_an_example_and_the_readme_names_it(command: str) -> None:
    result = run(*command.split(), "--help", env={})
    assert result.returncode == 0 and "Example:" in result.stdout
    assert f"digest {command}" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_import_remove_list_export(env: dict[str, str], tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_bytes(
        "\ufeffemail,name,locale,timezone\r\n"
        "Kovacs.Anna@Example.HU,Kovács Anna,hu,Europe/Budapest\r\n"
        "john@example.com,John,en,\r\n"
        '"a@b.c, evil@x.y",Two,,\r\n'
        "eva@example.hu,Éva,,\r\n".encode()
    )
    done = run("subscribers", "import", str(people), "--list", "daily", env=env)
    assert done.returncode == 9, done.stderr  # rows were rejected; the good ones are loaded
    assert (
        done.stdout == f"{people}: 3 added, 0 updated, 0 unchanged, 0 suppressed kept, 1 rejected\n"
    )
    [rejected] = done.stderr.splitlines()
    assert rejected.startswith(f"{people} line 4: 'a@b.c, evil@x.y' is not a valid address")

    done = run("subscribers", "remove", "kovacs.anna@example.hu", "--list", "daily", env=env)
    assert done.stdout == "Kovacs.Anna@example.hu: unsubscribed from daily (was active)\n"
    done = run("subscribers", "list", "--status", "unsubscribed", env=env)
    assert done.stdout == "Kovacs.Anna@example.hu\tdaily\tunsubscribed\t0\tKovács Anna\n"

    again = run("subscribers", "import", str(people), "--list", "daily", env=env)
    assert "0 added, 0 updated, 2 unchanged, 1 suppressed kept, 1 rejected" in again.stdout

    out = tmp_path / "export.csv"
    done = run("subscribers", "export", "--list", "daily", "--out", str(out), env=env)
    assert done.stdout == f"{out}: 3 subscriptions\n"
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["email"], r["status"]) for r in rows] == [
        ("Kovacs.Anna@example.hu", "unsubscribed"),
        ("john@example.com", "active"),
        ("eva@example.hu", "active"),
    ]
    assert run("subscribers", "export", env=env).stdout == out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("separator", "option"),
    [(";", []), ("\t", []), (",", []), (";", ["--delimiter", ";"]), ("\t", ["--delimiter", "tab"])],
    ids=["semicolon", "tab", "comma", "given-semicolon", "given-tab"],
)
def test_import_reads_the_separator_people_export(
    env: dict[str, str], tmp_path: Path, separator: str, option: list[str]
) -> None:
    people = tmp_path / "people.csv"
    rows = [
        "email,name,timezone",
        "odon@example.hu,Győri Ödön,Europe/Budapest",
        "eva@example.hu,Éva,",
    ]
    text = "\r\n".join(row.replace(",", separator) for row in rows) + "\r\n"
    people.write_bytes(b"\xef\xbb\xbf" + text.encode())
    done = run("subscribers", "import", str(people), "--list", "daily", *option, env=env)
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout == f"{people}: 2 added, 0 updated, 0 unchanged, 0 suppressed kept, 0 rejected\n"
    )
    listed = run("subscribers", "list", "--list", "daily", env=env).stdout.splitlines()
    assert "odon@example.hu\tdaily\tactive\t0\tGyőri Ödön" in listed


def test_bounces_then_the_same_again(env: dict[str, str], tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text(
        "email\nkovacs.anna@example.hu\nnagy.eva@freemail.example\nfekete.zsofia@gmail.com\n",
        encoding="utf-8",
    )
    assert run("subscribers", "import", str(people), "--list", "daily", env=env).returncode == 0
    done = run("bounces", str(FIXTURES), env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("soft nagy.eva@freemail.example: 5.2.2 552 5.2.2 Mailbox full")
    assert lines[0].endswith(": soft bounce 1 in a row")
    assert any(line.startswith("hard kovacs.anna@example.hu: 5.1.1 550 5.1.1") for line in lines)
    assert lines[-1].startswith("8 reports read: 1 hard, 1 soft (0 reached the limit), 2 policy, ")
    assert done.stderr.count("POLICY BOUNCE") == 2 and "nobody was unsubscribed" in done.stderr
    listed = run("subscribers", "list", "--status", "bounced", env=env).stdout
    assert listed == "kovacs.anna@example.hu\tdaily\tbounced\t0\t\n"

    again = run("bounces", str(FIXTURES), env=env)
    assert again.stdout.splitlines() == [
        "8 reports read: 0 hard, 0 soft (0 reached the limit), 0 policy, 0 unknown recipients, "
        "1 informational, 7 already processed; 0 complaints (0 suppressed, 0 unattributed); "
        "1 other messages, 0 unreadable files"
    ]
    assert again.stderr == ""


MISTAKES = [
    (["subscribers", "import", "{tmp}/missing.csv", "--list", "daily"], 5, "cannot read"),
    (["subscribers", "import", "{tmp}/colons.csv", "--list", "daily"], 5,
     "no 'email' column (found: 'email:name'); is the file separated by something else? "
     "try --delimiter ';'"),
    (["subscribers", "import", "{tmp}/colons.csv", "--list", "daily", "--delimiter", ";"], 5,
     "no 'email' column when split on ';'"),
    (["subscribers", "add", "a@b.c, evil@x.y", "--list", "daily"], 5, "is not a valid address"),
    (["subscribers", "add", "x@example.hu", "--list", "nope"], 3, "unknown list 'nope'"),
    (["subscribers", "add", "x@example.hu", "--list", "daily", "--timezone", "Mars/Base"], 5,
     "unknown time zone 'Mars/Base'"),
    (["subscribers", "remove", "nobody@example.hu", "--list", "daily"], 3, "no subscriber"),
    (["subscribers", "list", "--list", "nope"], 3, "unknown list 'nope'"),
    (["bounces", "{tmp}/nowhere"], 2, "does not exist"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "code", "message"),
    MISTAKES,
    ids=[
        "missing-file",
        "unknown-separator",
        "wrong-delimiter",
        "two-addresses",
        "unknown-list",
        "unknown-time-zone",
        "remove-unknown",
        "list-unknown-list",
        "bounces-missing-path",
    ],
)
def test_a_mistake_is_one_line_and_a_nonzero_exit(
    env: dict[str, str], tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    (tmp_path / "colons.csv").write_text("email:name\nodon@example.hu:Ödön\n", encoding="utf-8")
    done = run(*(arg.replace("{tmp}", str(tmp_path)) for arg in args), env=env)
    assert done.returncode == code, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("digest: error: ") and message in line
    assert "Traceback" not in done.stderr


def test_a_suppressed_address_is_not_added_back(env: dict[str, str]) -> None:
    assert run("subscribers", "add", "eva@example.hu", "--list", "daily", env=env).returncode == 0
    assert (
        run("subscribers", "remove", "eva@example.hu", "--list", "daily", env=env).returncode == 0
    )
    done = run("subscribers", "add", "EVA@example.hu", "--list", "daily", env=env)
    assert done.returncode == 5
    assert "stays so" in done.stderr and len(done.stderr.splitlines()) == 1
