"""The production path end to end, through the CLI alone: an install with its own domain and
the secret `digest init` made, a key from `digest dkim keygen`, and a relay that is no local
test server (so none of the demo's allowances apply) and requires STARTTLS and AUTH. Every
message that arrives is parsed and its DKIM signature verified against the published record."""

from __future__ import annotations

import os
import random
import socket
import ssl
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import dkim
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import RecordingHandler
from tests.support.cli import run
from tests.support.databases import in_ci
from tests.support.dkim_dns import zone_resolver
from tests.support.tls import PASSWORD, USER, Authenticator, self_signed

DOMAIN = "budapestpost.hu"


def relay_address() -> tuple[str, int]:
    """Where to run a relay that `digest` takes for one that reaches inboxes (not a local test
    server): on an address of this machine that is not loopback, else, as root, on a
    privileged port of loopback (as a local Postfix listens)."""
    found = set()
    for target in ("198.51.100.1", "10.255.255.254"):  # a route lookup: UDP sends nothing yet
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((target, 9))
            except OSError:
                continue
            found.add(str(probe.getsockname()[0]))
    outside = sorted(address for address in found if not address.startswith("127."))
    if outside:
        return outside[0], _free_port(outside[0], range(20000, 30000))
    if os.geteuid() == 0:
        return "127.0.0.1", _free_port("127.0.0.1", range(600, 1000))
    reason = "no address but loopback, and no root for a privileged port: no relay 'elsewhere'"
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def _free_port(address: str, ports: range) -> int:
    for port in random.sample(ports, 50):
        with socket.socket() as taken:
            try:
                taken.bind((address, port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port on {address} in {ports}")


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[RecordingHandler, Authenticator, str, int, Path]]:
    """A relay that requires STARTTLS, then AUTH, where `digest` treats it as a real one."""
    address, port = relay_address()
    cert, key = self_signed(tmp_path / "tls", address)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler, auth = RecordingHandler(), Authenticator()
    controller = Controller(
        handler,
        hostname=address,
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=auth,
        auth_require_tls=True,
        auth_required=True,
    )
    controller.start()
    try:
        yield handler, auth, address, port, cert
    finally:
        controller.stop()


def test_an_own_install_sends_signed_mail_over_starttls_and_auth(
    tmp_path: Path,
    own_config: Path,
    relay: tuple[RecordingHandler, Authenticator, str, int, Path],
) -> None:
    handler, auth, address, port, cert = relay
    env: dict[str, str | None] = {
        "DIGEST_CONFIG": str(own_config),
        "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'digest.sqlite3'}",
        "DIGEST_SECRETS_FILE": str(tmp_path / "var" / "secrets.toml"),
        "DIGEST_SITE__UNSUBSCRIBE_SECRET": None,  # nothing configured: init makes one
        "DIGEST_PREVIEW_DIR": str(tmp_path / "preview"),
    }
    made = run("init", "--seed", env=env)
    assert made.returncode == 0 and "wrote a new unsubscribe secret" in made.stdout, made.stderr
    keys = tmp_path / "keys"
    keygen = run("dkim", "keygen", "--selector", "s2026", "--domain", DOMAIN, "--out", str(keys))
    assert keygen.returncode == 0, keygen.stderr
    env |= {
        "DIGEST_DKIM__DOMAIN": DOMAIN,
        "DIGEST_DKIM__SELECTOR": "s2026",
        "DIGEST_DKIM__PRIVATE_KEY": str(keys / "s2026.private.pem"),
        "DIGEST_SMTP__HOST": address,
        "DIGEST_SMTP__PORT": str(port),
        "DIGEST_SMTP__SECURITY": "starttls",
        "DIGEST_SMTP__USERNAME": USER,
        "DIGEST_SMTP__PASSWORD": PASSWORD,
        "DIGEST_SMTP__CA_FILE": str(cert),
    }

    sent = run("send", "--list", "daily", env=env)
    assert sent.returncode == 0, sent.stderr
    assert "WARNING" not in sent.stderr, sent.stderr  # signed, aligned: nothing to warn about
    count = int(sent.stdout.strip().rsplit(" ", 2)[-2])
    assert count > 0 and len(handler.messages) == count
    assert auth.tried and all(inside for _, inside in auth.tried)  # AUTH only inside TLS
    verify = zone_resolver(keys / "s2026.dns.txt")
    for received in handler.messages:
        assert dkim.verify(received.data, dnsfunc=verify), received.recipients
        message = message_from_bytes(received.data, policy=policy.default)
        assert "d=budapestpost.hu;" in message["DKIM-Signature"].replace(" ", "")
        assert message["From"].addresses[0].domain == DOMAIN
        assert message["Message-ID"].endswith(f"@{DOMAIN}>")
        assert f"<https://{DOMAIN}/u/daily/" in message["List-Unsubscribe"]
        assert received.helo == DOMAIN and received.sender.endswith(f"@{DOMAIN}")

    # Signing for a domain that is not the From address's: DMARC cannot pass on DKIM. Warned.
    elsewhere = {**env, "DIGEST_DKIM__DOMAIN": "mailer.example-esp.com"}
    test_send = run("send", "--list", "daily", "--to", "editor@budapestpost.hu", env=elsewhere)
    assert test_send.returncode == 0, test_send.stderr
    warnings = [line for line in test_send.stderr.splitlines() if "does not align" in line]
    assert len(warnings) == 1 and "newsletter@budapestpost.hu" in warnings[0], test_send.stderr
