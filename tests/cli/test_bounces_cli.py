"""`digest bounces` on a maildir that holds bounces (DSNs) and complaints (ARF) together."""

from __future__ import annotations

import mailbox
from pathlib import Path

from digest.models import SubscriptionStatus
from digest.store import Enrolment, Store
from digest.store.schema import make_engine
from tests.support.cli import cli_environment, run
from tests.support.complaints import FIXTURE_SECRET, PEOPLE, SENT_AT, fixture_ledger
from tests.support.databases import copy_sqlite

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bounces"
DSNS = ("postfix-5.1.1.eml", "exim-mailbox-full-5.2.2.eml", "gmail-policy-5.7.26.eml")


def test_a_maildir_of_bounces_and_complaints(empty_database: Path, tmp_path: Path) -> None:
    database = tmp_path / "cli.sqlite3"
    copy_sqlite(empty_database, database)
    store = Store(make_engine(f"sqlite:///{database}"))
    fixture_ledger(store)
    bouncing = ["kovacs.anna@example.hu", "nagy.eva@freemail.example", "fekete.zsofia@gmail.com"]
    active = SubscriptionStatus.ACTIVE
    store.enrol([Enrolment(email, "", "", "", active) for email in bouncing], "daily", now=SENT_AT)
    store.engine.dispose()
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for file in [*(FIXTURES / name for name in DSNS), *sorted((FIXTURES / "complaints").glob("*"))]:
        box.add(file.read_bytes())
    env = {
        **cli_environment(database, port=1, folder=tmp_path),
        "DIGEST_SITE__UNSUBSCRIBE_SECRET": FIXTURE_SECRET.decode(),
    }

    done = run("bounces", str(tmp_path / "Maildir"), env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == (
        "3 reports read: 1 hard, 1 soft (0 reached the limit), 1 policy, 0 unknown recipients, "
        "0 informational, 0 already processed; 5 complaints (4 suppressed, 1 unattributed); "
        "0 other messages, 0 unreadable files"
    )
    complained = [line for line in lines if line.startswith("complaint abuse")]
    assert len(complained) == 5
    assert sum(line.endswith("complained, suppressed on every list") for line in complained) == 4
    assert sum("reported, not applied" in line for line in complained) == 1
    assert any(line.startswith("hard kovacs.anna@example.hu") for line in lines)
    assert "POLICY BOUNCE fekete.zsofia@gmail.com" in done.stderr

    listed = run("subscribers", "list", "--status", "complained", env=env).stdout.splitlines()
    assert sorted(line.split("\t")[:3] for line in listed) == sorted(
        [email, slug, "complained"]
        for email in (*PEOPLE[:3], PEOPLE[4])
        for slug in ("daily", "weekly")
    )
    again = run("bounces", str(tmp_path / "Maildir"), env=env)
    assert again.stdout.splitlines()[-1].startswith("3 reports read: 0 hard, 0 soft")
    assert "8 already processed; 5 complaints (0 suppressed, 0 unattributed)" in again.stdout


def test_verp_without_a_bounce_address_is_one_line() -> None:
    from tests.cli.test_user_mistakes import one_line_error

    line = one_line_error(run("config", env={"DIGEST_BOUNCES__VERP": "true"}), code=2)
    assert "verp = true needs [bounces] address" in line
