"""The way to production: `digest init` makes the install's own secret, a relay that reaches
inboxes refuses the shipped examples, and `status` and `config` say whether mail is signed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.config.sending import SMTPSettings
from digest.config.site import PLACEHOLDER_SECRET, is_example_domain
from digest.errors import ExitCode
from digest.mail.dkim import generate_key
from digest.models import DeliveryState
from digest.operations.production import organisational_domain
from digest.store import Store
from digest.store.schema import make_engine
from tests.conftest import ROOT, RecordingHandler
from tests.support.cli import run

# A relay that reaches inboxes, by its port; `.invalid` never resolves, so nothing is sent.
REAL_RELAY = {"DIGEST_SMTP__HOST": "relay.budapestpost.invalid", "DIGEST_SMTP__PORT": "587"}
OWN_SITE = {
    "DIGEST_SITE__UNSUBSCRIBE_SECRET": "the-publishers-own-secret-6f1c9a",
    "DIGEST_SITE__BASE_URL": "https://budapestpost.hu",
    "DIGEST_SITE__MAIL_DOMAIN": "budapestpost.hu",
}


@pytest.fixture
def fresh(tmp_path: Path) -> dict[str, str | None]:
    """An install with no secret configured: its database and secrets file in tmp_path."""
    return {
        "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'digest.sqlite3'}",
        "DIGEST_SECRETS_FILE": str(tmp_path / "var" / "secrets.toml"),
        "DIGEST_SITE__UNSUBSCRIBE_SECRET": None,
    }


def test_init_writes_a_random_secret_only_its_owner_can_read(
    fresh: dict[str, str | None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = run("init", env=fresh)
    assert made.returncode == 0, made.stderr
    secrets_file = tmp_path / "var" / "secrets.toml"
    assert f"wrote a new unsubscribe secret to {secrets_file} (mode 0600)" in made.stdout
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    content = secrets_file.read_bytes()

    again = run("init", env=fresh)  # kept: a new secret would break every link already sent
    assert again.returncode == 0 and "unsubscribe secret" not in again.stdout
    assert secrets_file.read_bytes() == content

    monkeypatch.delenv("DIGEST_SITE__UNSUBSCRIBE_SECRET")
    monkeypatch.setenv("DIGEST_SECRETS_FILE", str(secrets_file))
    secret = load_settings(ROOT / "config" / "digest.toml").site.unsubscribe_secret
    assert len(secret.get_secret_value()) >= 40
    assert secret.get_secret_value() != PLACEHOLDER_SECRET

    other = tmp_path / "other"  # a second install gets a secret of its own
    assert run("init", env={**fresh, "DIGEST_SECRETS_FILE": str(other / "s.toml")}).returncode == 0
    monkeypatch.setenv("DIGEST_SECRETS_FILE", str(other / "s.toml"))
    assert load_settings(ROOT / "config" / "digest.toml").site.unsubscribe_secret != secret


def test_a_secrets_file_others_can_read_is_refused(
    fresh: dict[str, str | None], tmp_path: Path
) -> None:
    assert run("init", env=fresh).returncode == 0
    (tmp_path / "var" / "secrets.toml").chmod(0o644)
    shown = run("status", env=fresh)
    assert shown.returncode == ExitCode.CONFIG
    assert shown.stderr.strip().splitlines() == [
        f"digest: error: secrets file {tmp_path / 'var' / 'secrets.toml'} is readable by others "
        f"(mode 0644); run: chmod 600 {tmp_path / 'var' / 'secrets.toml'}"
    ]


def _queued(database: Path) -> dict[str, int]:
    store = Store(make_engine(f"sqlite:///{database}"))
    edition = store.latest_edition("daily")
    assert edition is not None
    return store.delivery_counts(edition.id)


def test_a_real_relay_refuses_the_shipped_examples_and_loses_nothing(
    fresh: dict[str, str | None], tmp_path: Path
) -> None:
    env = {**fresh, "DIGEST_SECRETS_FILE": str(tmp_path / "absent.toml")}
    assert run("init", "--seed", env={**env, **OWN_SITE}).returncode == 0
    refused = run("send", "--list", "daily", env={**env, **REAL_RELAY})
    assert refused.returncode == ExitCode.CONFIG
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("digest: error: refusing to send through relay.budapestpost.invalid:587")
    for setting in ("site.unsubscribe_secret", "site.base_url", "site.mail_domain"):
        assert setting in line
    # Mail from a domain with no DNS is refused by receivers, and nobody can reply to it.
    for sender in (
        "lists.daily.from_address newsletter@budapestpost.example",
        "lists.weekly.reply_to editors@budapestpost.example",
        "web.confirmation_from subscriptions@budapestpost.example",
    ):
        assert sender in line
    assert "DIGEST_SITE__UNSUBSCRIBE_SECRET" in line
    # Refused before anything was claimed: every copy is still queued for a later send.
    counts = _queued(tmp_path / "digest.sqlite3")
    assert set(counts) == {DeliveryState.QUEUED} and counts[DeliveryState.QUEUED] > 0

    own_secret_only = {**env, **REAL_RELAY, "DIGEST_SITE__UNSUBSCRIBE_SECRET": "own-secret-42"}
    still = run("send", "--list", "daily", env=own_secret_only)
    assert still.returncode == ExitCode.CONFIG
    assert "site.base_url" in still.stderr and "site.unsubscribe_secret" not in still.stderr


def test_a_real_relay_without_dkim_is_warned_about_once(
    fresh: dict[str, str | None], own_config: Path
) -> None:
    env = {**fresh, **OWN_SITE, "DIGEST_CONFIG": str(own_config)}
    assert run("init", "--seed", env=env).returncode == 0
    sent = run("send", "--list", "daily", env={**env, **REAL_RELAY})
    # The relay does not resolve: the send fails, after the warning, with nothing sent.
    assert sent.returncode != 0
    warnings = [line for line in sent.stderr.splitlines() if "without DKIM" in line]
    assert len(warnings) == 1, sent.stderr
    assert "Gmail and Yahoo require DKIM for bulk mail: digest dkim keygen" in warnings[0]
    assert "--domain budapestpost.hu" in warnings[0]
    assert "Traceback" not in sent.stderr


def test_a_local_test_server_takes_the_examples_without_a_word(cli_env: dict[str, str]) -> None:
    sent = run("send", "--list", "daily", env={**cli_env, "DIGEST_SITE__UNSUBSCRIBE_SECRET": ""})
    assert sent.returncode == 0, sent.stderr
    assert "DKIM" not in sent.stderr


def test_status_and_config_say_whether_mail_is_signed(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    off = run("status", env=cli_env)
    assert off.returncode == 0
    assert off.stdout.splitlines()[0].startswith("DKIM signing: off (Gmail and Yahoo require it")
    key = generate_key(tmp_path / "keys", selector="d2026", domain="budapestpost.example")
    signed = {
        **cli_env,
        "DIGEST_DKIM__DOMAIN": "budapestpost.example",
        "DIGEST_DKIM__SELECTOR": "d2026",
        "DIGEST_DKIM__PRIVATE_KEY": str(key.private_key_path),
    }
    on = run("status", env=signed)
    assert on.returncode == 0, on.stderr
    assert on.stdout.splitlines()[0].startswith("DKIM signing: on (d=budapestpost.example, s=d2026")
    shown = run("config", env=signed)
    assert shown.returncode == 0
    assert shown.stderr.startswith("DKIM signing: on (d=budapestpost.example, s=d2026")
    assert shown.stdout.lstrip().startswith("{")  # stdout is the JSON alone


@pytest.mark.parametrize(
    ("host", "example"),
    [
        ("budapestpost.example", True),
        ("news.example.com", True),
        ("example.org", True),
        ("mail.test", True),
        ("BudapestPost.Example.", True),
        ("budapestpost.hu", False),
        ("example.hu", False),
        ("notexample.com", False),
    ],
)
def test_example_domains(host: str, example: bool) -> None:
    assert is_example_domain(host) is example


@pytest.mark.parametrize(
    ("host", "port", "local"),
    [
        ("127.0.0.1", 8025, True),
        ("localhost", 2525, True),
        ("::1", 40000, True),
        ("127.0.0.1", 25, False),  # a local Postfix passes mail on
        ("localhost", 587, False),
        ("10.0.0.5", 8025, False),
        ("smtp.budapestpost.hu", 2525, False),
    ],
)
def test_which_servers_are_local_test_servers(host: str, port: int, local: bool) -> None:
    assert SMTPSettings(host=host, port=port).is_local_test_server is local


def test_ehlo_names_the_mail_domain_and_bounces_go_to_the_bounce_address(
    cli_env: dict[str, str], smtp_server: tuple[RecordingHandler, int]
) -> None:
    handler, _ = smtp_server
    plain = run("send", "--list", "daily", "--to", "odon.gyori@example.hu", env=cli_env)
    assert plain.returncode == 0, plain.stderr
    [first] = handler.messages
    assert first.helo == "budapestpost.example"  # site.mail_domain, never "localhost"
    assert first.sender == "newsletter@budapestpost.example"  # the list's From by default

    bounced_to = "bounces@bounces.budapestpost.example"
    env = {
        **cli_env,
        "DIGEST_BOUNCES__ADDRESS": bounced_to,
        "DIGEST_SMTP__LOCAL_HOSTNAME": "mx1.bp.hu",
    }
    sent = run("send", "--list", "daily", env=env)
    assert sent.returncode == 0, sent.stderr
    digests = handler.messages[1:]
    assert digests and {m.sender for m in digests} == {bounced_to}
    assert {m.helo for m in digests} == {"mx1.bp.hu"}
    assert {str(m.message["From"]) for m in digests} == {
        "Budapest Post <newsletter@budapestpost.example>"
    }


def test_a_bounce_address_that_is_no_address_is_refused(cli_env: dict[str, str]) -> None:
    shown = run("config", env={**cli_env, "DIGEST_BOUNCES__ADDRESS": "bounces at example"})
    assert shown.returncode == ExitCode.CONFIG
    [line] = shown.stderr.strip().splitlines()
    assert (
        line.startswith("digest: error: DIGEST_BOUNCES__ADDRESS:")
        and "not an email address" in line
    )


@pytest.mark.parametrize(
    ("name", "organisational"),
    [
        ("budapestpost.hu", "budapestpost.hu"),
        ("news.mail.budapestpost.hu", "budapestpost.hu"),
        ("bounces.bbc.co.uk", "bbc.co.uk"),
        ("Mail.Example-ESP.com.", "example-esp.com"),
    ],
)
def test_alignment_compares_organisational_domains(name: str, organisational: str) -> None:
    assert organisational_domain(name) == organisational
