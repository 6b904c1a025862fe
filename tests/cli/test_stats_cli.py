"""`digest stats` and the health warnings of `digest status`, on a ledger with ARF complaints."""

from __future__ import annotations

import csv
import json
import mailbox
from dataclasses import replace
from pathlib import Path

import pytest

from digest.operations.stats import EditionStats
from digest.store import Store
from digest.store.schema import make_engine
from tests.support.cli import cli_environment, run
from tests.support.complaints import FIXTURE_SECRET, fixture_ledger
from tests.support.databases import copy_sqlite

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bounces"

QUIET = EditionStats(
    edition_id=7,
    list_slug="daily",
    edition_date="2026-03-02",
    delivered=10_000,
    deferred=0,
    failed=0,
    bounced_hard=0,
    bounced_soft=0,
    complaints=0,
    unsubscribes=0,
    clicks=0,
    machine_clicks=0,
    articles=(),
)


@pytest.mark.parametrize(
    ("changes", "warned"),
    [
        ({}, []),
        ({"complaints": 10}, []),  # exactly 0.1%
        ({"complaints": 11}, ["complaint rate 0.11%"]),
        ({"bounced_hard": 150, "bounced_soft": 50}, []),  # exactly 2%
        ({"bounced_hard": 150, "bounced_soft": 51}, ["bounce rate 2.01%"]),
        ({"complaints": 40, "bounced_soft": 300}, ["complaint rate 0.40%", "bounce rate 3.00%"]),
        ({"delivered": 0, "complaints": 1}, []),
    ],
    ids=["quiet", "complaints-at-limit", "complaints-over", "bounces-at-limit", "bounces-over",
         "both", "nothing-delivered"],
)  # fmt: skip
def test_status_warns_past_the_thresholds(changes: dict[str, int], warned: list[str]) -> None:
    lines = replace(QUIET, **changes).warnings()
    assert len(lines) == len(warned)
    assert all(part in line for part, line in zip(warned, lines, strict=True))


def test_stats_and_status_show_the_complaints_of_an_edition(
    empty_database: Path, tmp_path: Path
) -> None:
    database = tmp_path / "cli.sqlite3"
    copy_sqlite(empty_database, database)
    store = Store(make_engine(f"sqlite:///{database}"))
    edition = fixture_ledger(store)
    store.engine.dispose()
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for file in sorted((FIXTURES / "complaints").glob("*")):
        box.add(file.read_bytes())
    env = {
        **cli_environment(database, port=1, folder=tmp_path),
        "DIGEST_SITE__UNSUBSCRIBE_SECRET": FIXTURE_SECRET.decode(),
    }
    assert run("bounces", str(tmp_path / "Maildir"), env=env).returncode == 0

    done = run("stats", str(edition.id), "--json", "--csv", str(tmp_path / "e.csv"), env=env)
    assert done.returncode == 0, done.stderr
    numbers = json.loads(done.stdout)
    assert (numbers["delivered"], numbers["complaints"]) == (
        5,
        3,
    )  # the fifth names its reader by token only, no edition
    assert numbers["rates"]["complaints"] == 0.6
    with (tmp_path / "e.csv").open(encoding="utf-8", newline="") as file:
        assert next(csv.reader(file))[:4] == ["edition", "list", "date", "article_id"]

    status = run("status", env=env)
    assert status.returncode == 0, status.stderr
    assert f"warning: edition #{edition.id} (daily): complaint rate 60.00% is over 0.1%" in (
        status.stdout
    )
    table = run("stats", str(edition.id), env=env)
    assert "complaints" in table.stdout and "60.00%" in table.stdout
    missing = run("stats", "999", env=env)
    assert missing.returncode == 3 and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
