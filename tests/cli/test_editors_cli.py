"""`digest editors ...` as a user meets them, through a real process on a real database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.databases import copy_sqlite

PASSWORD = "a long enough passphrase\n"


@pytest.fixture
def env(empty_database: Path, tmp_path: Path) -> dict[str, str]:
    copy_sqlite(empty_database, tmp_path / "cli.sqlite3")
    return {
        "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "DIGEST_DESK__HASH_MEMORY_KIB": "1024",  # the lowest cost: these tests check the rules
        "DIGEST_DESK__HASH_PASSES": "1",
    }


def test_add_list_password_remove(env: dict[str, str]) -> None:
    added = run("editors", "add", "Anna@Budapestpost.example", "--password-stdin", env=env,
                stdin=PASSWORD)  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "editor Anna@budapestpost.example added" in added.stdout
    listed = run("editors", "list", env=env)
    assert listed.stdout.strip() == "Anna@budapestpost.example"
    again = run("editors", "add", "anna@budapestpost.example", "--password-stdin", env=env,
                stdin=PASSWORD)  # fmt: skip
    assert again.returncode != 0 and "already an editor" in again.stderr
    changed = run("editors", "password", "anna@budapestpost.example", "--password-stdin",
                  env=env, stdin="another long passphrase\n")  # fmt: skip
    assert changed.returncode == 0 and "sessions have ended" in changed.stdout
    removed = run("editors", "remove", "anna@budapestpost.example", env=env)
    assert removed.returncode == 0
    assert "no editors yet" in run("editors", "list", env=env).stdout
    gone = run("editors", "remove", "anna@budapestpost.example", env=env)
    assert gone.returncode != 0 and "is not an editor" in gone.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (("x@budapestpost.example", "--password-stdin"), "short\n", "at least 12 characters"),
        (("not-an-address", "--password-stdin"), PASSWORD, "not a valid address"),
        (("x@budapestpost.example",), "", "use --password-stdin"),
        (("x@budapestpost.example", "--password-stdin"), "\n", "the password is empty"),
    ],
    ids=["short-password", "bad-address", "no-terminal", "empty-password"],
)
def test_a_mistake_is_one_line_and_a_nonzero_exit(
    env: dict[str, str], args: tuple[str, ...], stdin: str, says: str
) -> None:
    result = run("editors", "add", *args, env=env, stdin=stdin)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
