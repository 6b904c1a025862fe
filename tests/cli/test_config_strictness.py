"""A setting is checked whole when it loads: a trailing newline or a stray character is a
one-line error then, not a failure in the middle of a send; `digest config` shows no password."""

from __future__ import annotations

import json

import pytest

from digest.config import load_settings
from digest.errors import ConfigError
from tests.cli.test_user_mistakes import one_line_error
from tests.conftest import ROOT
from tests.support.cli import run

DAILY = {"slug": "daily", "name": "Daily"}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DIGEST_WEB__CONFIRMATION_FROM", "subscriptions@budapestpost.example\n"),
        ("DIGEST_LISTS", json.dumps([{**DAILY, "from_address": "news@budapestpost.example\n"}])),
        ("DIGEST_LISTS", json.dumps([{**DAILY, "slug": "daily\n"}])),
        ("DIGEST_SITE__MAIL_DOMAIN", "budapestpost.example\n"),
        ("DIGEST_SITE__MAIL_DOMAIN", "budapest post.example"),
        ("DIGEST_SITE__MAIL_DOMAIN", "localhost"),
        ("DIGEST_SITE__MAIL_DOMAIN", "-bad.example"),
        ("DIGEST_SITE__FEEDBACK_SENDER_ID", "budapestpost\n"),
        ("DIGEST_BOUNCES__ADDRESS", "bounces@budapestpost.example\n"),
    ],
    ids=[
        "confirmation-from-newline",
        "list-from-newline",
        "slug-newline",
        "mail-domain-newline",
        "mail-domain-space",
        "mail-domain-one-label",
        "mail-domain-leading-hyphen",
        "feedback-id-newline",
        "bounce-address-newline",
    ],
)
def test_a_value_must_match_whole(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings(ROOT / "config" / "digest.toml")
    assert variable in str(raised.value)


def test_a_good_mail_domain_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SITE__MAIL_DOMAIN", "mail.budapest-post.hu")
    assert (
        load_settings(ROOT / "config" / "digest.toml").site.mail_domain == "mail.budapest-post.hu"
    )


def test_a_bad_mail_domain_is_one_line_from_the_command() -> None:
    line = one_line_error(run("config", env={"DIGEST_SITE__MAIL_DOMAIN": "news\n"}), code=2)
    assert "DIGEST_SITE__MAIL_DOMAIN" in line and "domain name" in line


def test_config_masks_the_database_password() -> None:
    url = "postgresql+psycopg://digest:s3cr%40t-pw@db.internal:5432/digest?sslmode=require"
    shown = run("config", env={"DIGEST_DATABASE_URL": url})
    assert shown.returncode == 0, shown.stderr
    assert "s3cr" not in shown.stdout
    settings = json.loads(shown.stdout)
    assert settings["database_url"] == (
        "postgresql+psycopg://digest:**********@db.internal:5432/digest?sslmode=require"
    )
