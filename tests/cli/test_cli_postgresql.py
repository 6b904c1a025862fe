"""Every command that reads or writes the database, run once through the CLI on PostgreSQL
(the other tests run them on SQLite): one reader's life from import to unsubscribe.

In this process (typer's runner), to keep it quick: tests/test_migrations.py runs `digest init`
as a real process on both backends.
"""

from __future__ import annotations

import logging
import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest.cli import commands
from digest.config import load_settings
from digest.edition.tokens import unsubscribe_token
from digest.errors import ExitCode
from digest.store import Store
from digest.store.schema import make_engine
from tests.conftest import ROOT, RecordingHandler

READER = "odon.gyori@example.hu"  # seeded, active on daily


def digest(env: dict[str, str], *args: str, stdin: bytes | None = None, code: int = 0) -> str:
    """Run `digest ARGS`; returns its standard output, after checking that it succeeded."""
    # `digest worker` points logging at the runner's stderr, which closes when it returns:
    # later log records (other tests' SMTP server threads) would fail on it.
    loggers = [logging.getLogger(), logging.getLogger("apscheduler")]
    saved = [(logger, logger.handlers[:], logger.level) for logger in loggers]
    try:
        done = CliRunner().invoke(
            commands, list(args), env=env, input=stdin, catch_exceptions=False
        )
    finally:
        for logger, handlers, level in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
    assert done.exit_code == code, (args, done.output)
    return done.stdout


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_every_database_command_works_on_postgresql(
    database_url: str, smtp_server: tuple[RecordingHandler, int], tmp_path: Path
) -> None:
    handler, port = smtp_server
    env = {
        "DIGEST_DATABASE_URL": database_url,
        "DIGEST_SMTP__PORT": str(port),
        "DIGEST_PREVIEW_DIR": str(tmp_path / "preview"),
    }
    assert "schema at revision" in digest(env, "init", "--seed")

    people = tmp_path / "people.csv"
    people.write_text("email,name,locale,timezone\nanna@example.hu,Kovács Anna,hu,\n")
    assert "1 added" in digest(env, "subscribers", "import", str(people), "--list", "daily")
    digest(env, "subscribers", "add", "bela@example.hu", "--list", "daily", "--name", "Béla")
    assert "bela@example.hu" in digest(env, "subscribers", "list", "--list", "daily")
    digest(env, "subscribers", "export", "--out", str(tmp_path / "out.csv"))
    assert "anna@example.hu" in (tmp_path / "out.csv").read_text(encoding="utf-8")
    digest(env, "subscribers", "remove", "bela@example.hu", "--list", "daily")

    record = '{"id": "pg-1", "title": "Budget passed", "url": "https://budapestpost.example/a/1"}'
    digest(env, "articles", "add", record)
    digest(env, "articles", "import", str(ROOT / "tests" / "fixtures" / "feeds" / "rss.xml"))
    assert "Budget passed" in digest(env, "articles", "list")

    handler.refuse["anna@example.hu"] = "554 5.7.1 Policy rejection"
    sent = digest(env, "send", "--list", "daily", code=ExitCode.DELIVERIES_FAILED)
    assert "1 failed" in sent, sent
    assert not handler.for_address("bela@example.hu")
    edition = re.search(r"#(\d+)", digest(env, "status"))
    assert edition is not None
    digest(env, "preview", "--list", "daily", "--subscriber", READER)
    handler.refuse.clear()
    assert "1 sent" in digest(env, "retry", edition.group(1), "--failed")
    digest(env, "resume", edition.group(1))
    digest(env, "worker", "--until-idle", "--poll", "0.1")
    assert len(handler.for_address("anna@example.hu")) == 1

    digest(env, "bounces", str(ROOT / "tests" / "fixtures" / "bounces"))

    store = Store(make_engine(database_url))
    site = load_settings(ROOT / "config" / "digest.toml").site
    token = unsubscribe_token(
        secret=site.unsubscribe_secret.get_secret_value().encode(),
        key_id=site.unsubscribe_key_id,
        subscriber_id=store.subscriber_by_email(READER).id,
        list_slug="daily",
    )
    mail = EmailMessage()
    mail["From"], mail["Subject"] = READER, "unsubscribe"
    mail["To"] = f"unsubscribe+daily.{token}@{site.mail_domain}"
    mail.set_content("Please take me off this list.")
    digest(env, "unsubscribe-mail", stdin=mail.as_bytes())
    assert READER not in {s.email for s in store.active_subscribers("daily")}
    store.engine.dispose()
