"""CLI fixtures: the seeded and the empty database are made once per test process, by the
command itself, and copied per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, RecordingHandler
from tests.support.cli import cli_environment, run
from tests.support.databases import copy_sqlite


@pytest.fixture(scope="session")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database after `digest init --seed`, made by the command itself."""
    database = tmp_path_factory.mktemp("seeded") / "seeded.sqlite3"
    made = run("init", "--seed", env={"DIGEST_DATABASE_URL": f"sqlite:///{database}"})
    assert made.returncode == 0, made.stderr
    return database


@pytest.fixture(scope="session")
def empty_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database after `digest init`: the schema and the configured lists, no seeds."""
    database = tmp_path_factory.mktemp("empty") / "empty.sqlite3"
    made = run("init", env={"DIGEST_DATABASE_URL": f"sqlite:///{database}"})
    assert made.returncode == 0, made.stderr
    return database


@pytest.fixture
def cli_env(
    seeded_database: Path, tmp_path: Path, smtp_server: tuple[RecordingHandler, int]
) -> dict[str, str]:
    """Environment for `digest` on this test's own copy of the seeded database."""
    copy_sqlite(seeded_database, tmp_path / "cli.sqlite3")
    return cli_environment(tmp_path / "cli.sqlite3", port=smtp_server[1], folder=tmp_path)


@pytest.fixture
def own_config(tmp_path: Path) -> Path:
    """The shipped config with the publisher's own domain for every example one."""
    shipped = (ROOT / "config" / "digest.toml").read_text(encoding="utf-8")
    path = tmp_path / "digest.toml"
    path.write_text(shipped.replace("budapestpost.example", "budapestpost.hu"), encoding="utf-8")
    return path
