"""The commands people run to look while a send holds SQLite's write lock answer at once,
from the last committed state, instead of waiting out the busy timeout."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SeededTemplates
from tests.support.cli import cli_environment, run
from tests.support.locking import PROMPT, database_of, sent_install, write_lock_held


@dataclass(frozen=True)
class Sent:
    """The install after its daily edition went out, as the commands' environment sees it."""

    env: dict[str, str]
    database: Path
    edition_id: int
    sent: int


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory, seeded_templates: SeededTemplates) -> Sent:
    folder = tmp_path_factory.mktemp("locked-cli")
    database = database_of(sent_install(folder, seeded_templates))
    with sqlite3.connect(database) as connection:
        ((edition_id, count),) = connection.execute(
            "SELECT edition_id, count(*) FROM deliveries WHERE state = 'sent' GROUP BY edition_id"
        ).fetchall()
    env = cli_environment(database, port=1, folder=folder)  # these commands send nothing
    return Sent(env, database, edition_id, count)


def _status(sent: Sent, out: str) -> None:
    assert f"#{sent.edition_id} " in out and f"{sent.sent} sent" in out


def _stats(sent: Sent, out: str) -> None:
    numbers = json.loads(out)
    assert numbers["edition_id"] == sent.edition_id and numbers["delivered"] == sent.sent


def _preview(sent: Sent, out: str) -> None:
    assert ".eml" in out and "message size" in out


def _subscribers(sent: Sent, out: str) -> None:
    assert len(out.splitlines()) >= sent.sent and "\tdaily\tactive\t" in out


# (arguments, given the edition id; what the output must show)
COMMANDS: dict[str, tuple[Callable[[Sent], list[str]], Callable[[Sent, str], None]]] = {
    "status": (lambda sent: ["status"], _status),
    "stats-json": (lambda sent: ["stats", str(sent.edition_id), "--json"], _stats),
    "preview": (lambda sent: ["preview", "--list", "daily"], _preview),
    "subscribers-list": (lambda sent: ["subscribers", "list", "--list", "daily"], _subscribers),
}


@pytest.mark.parametrize("name", list(COMMANDS), ids=list(COMMANDS))
def test_a_command_that_only_reads_answers_while_a_send_holds_the_write_lock(
    sent: Sent, name: str
) -> None:
    arguments, shows = COMMANDS[name]
    with write_lock_held(sent.database):
        started = time.monotonic()
        done = run(*arguments(sent), env=sent.env, timeout=PROMPT)
        took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert took < PROMPT
    # The committed ledger, not the sender's uncommitted change of every row to `sending`.
    shows(sent, done.stdout)
