"""SMTP sessions as a relay would see them: STARTTLS, implicit TLS, AUTH, verified certificates."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from digest.config import SMTPSettings
from digest.errors import ConfigError, TransportError
from digest.mail.transport import SMTPConnection, Stage, free_port
from digest.models import SMTPSecurity
from tests.conftest import RecordingHandler
from tests.support.tls import Authenticator, self_signed

MESSAGE = b"Subject: hi\r\nTo: a@example.com\r\n\r\nhello\r\n"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, written as PEM files."""
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(
    certificate: tuple[Path, Path], request: pytest.FixtureRequest
) -> Iterator[tuple[RecordingHandler, Authenticator, int]]:
    implicit, offer_starttls = request.param
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    handler, auth, port = RecordingHandler(), Authenticator(), free_port()
    # aiosmtpd only knows STARTTLS as TLS for auth_require_tls; the client must not care.
    kwargs: dict[str, Any] = {"authenticator": auth, "auth_require_tls": not implicit}
    if implicit:
        kwargs["ssl_context"] = context
    elif offer_starttls:
        kwargs.update(tls_context=context, require_starttls=True)
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield handler, auth, port
    finally:
        controller.stop()


def smtp(
    port: int, security: SMTPSecurity, ca_file: Path | None, password: str = "s3cret"
) -> SMTPSettings:
    return SMTPSettings(
        host="127.0.0.1",
        port=port,
        security=security,
        username="digest",
        password=password,
        timeout=5,
        local_hostname="mail.budapestpost.example",
        ca_file=ca_file,
    )


@pytest.mark.parametrize(
    ("tls_server", "security"),
    [((False, True), SMTPSecurity.STARTTLS), ((True, False), SMTPSecurity.TLS)],
    ids=["starttls", "implicit-tls"],
    indirect=["tls_server"],
)
def test_tls_and_auth_then_send(
    tls_server: tuple[RecordingHandler, Authenticator, int],
    security: SMTPSecurity,
    certificate: tuple[Path, Path],
) -> None:
    handler, auth, port = tls_server
    with SMTPConnection(smtp(port, security, certificate[0])) as connection:
        reply = connection.send("news@budapestpost.example", "a@example.com", MESSAGE)
    assert reply.accepted and reply.stage == Stage.DOT
    assert auth.tried == [("digest", True)]  # AUTH only ever inside TLS
    assert handler.messages[0].data == MESSAGE


@pytest.mark.parametrize("tls_server", [(False, True)], ids=["starttls"], indirect=True)
def test_untrusted_certificate_is_refused(
    tls_server: tuple[RecordingHandler, Authenticator, int],
) -> None:
    handler, auth, port = tls_server
    with pytest.raises(
        TransportError, match=r"TLS with SMTP server .* failed: CERTIFICATE_VERIFY_FAILED"
    ):
        SMTPConnection(smtp(port, SMTPSecurity.STARTTLS, None)).open()
    assert auth.tried == [] and handler.messages == []


@pytest.mark.parametrize("tls_server", [(False, False)], ids=["no-starttls"], indirect=True)
def test_missing_starttls_is_never_skipped(
    tls_server: tuple[RecordingHandler, Authenticator, int], certificate: tuple[Path, Path]
) -> None:
    handler, auth, port = tls_server
    with pytest.raises(TransportError, match="does not offer STARTTLS"):
        SMTPConnection(smtp(port, SMTPSecurity.STARTTLS, certificate[0])).open()
    assert auth.tried == [] and handler.messages == []


@pytest.mark.parametrize("tls_server", [(False, True)], ids=["starttls"], indirect=True)
def test_wrong_password_is_one_clear_error(
    tls_server: tuple[RecordingHandler, Authenticator, int], certificate: tuple[Path, Path]
) -> None:
    _, auth, port = tls_server
    with pytest.raises(TransportError, match="refused the login: 535"):
        SMTPConnection(smtp(port, SMTPSecurity.STARTTLS, certificate[0], password="wrong")).open()
    assert auth.tried and all(inside_tls for _, inside_tls in auth.tried)


def test_no_password_in_plaintext_to_a_remote_relay() -> None:
    with pytest.raises(ConfigError, match="without TLS"):
        SMTPConnection(SMTPSettings(host="smtp.example.net", username="u", password="p"))


def test_ehlo_uses_the_configured_name(smtp_server: tuple[RecordingHandler, int]) -> None:
    seen: list[str] = []

    class Greeted(RecordingHandler):
        async def handle_EHLO(
            self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
        ) -> list[str]:
            seen.append(hostname)
            session.host_name = hostname
            return responses

    port = free_port()
    controller = Controller(Greeted(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with SMTPConnection(
            SMTPSettings(port=port, local_hostname="mail.budapestpost.example")
        ) as connection:
            assert connection.send("a@budapestpost.example", "b@example.com", MESSAGE).accepted
    finally:
        controller.stop()
    assert seen == ["mail.budapestpost.example"]


@pytest.mark.parametrize(
    "data",
    [
        b"Subject: dots\r\n\r\n.leading\r\n.\r\n..two\r\nlast\r\n",
        b".first line\r\n\r\nno final line break",
    ],
    ids=["body-lines", "first-line-unterminated"],
)
def test_lines_that_start_with_a_dot_arrive_intact(
    smtp_server: tuple[RecordingHandler, int], data: bytes
) -> None:
    handler, port = smtp_server
    with SMTPConnection(SMTPSettings(port=port)) as connection:
        assert connection.send("a@budapestpost.example", "b@example.com", data).accepted
    (received,) = handler.messages
    assert received.data == (data if data.endswith(b"\r\n") else data + b"\r\n")


def test_a_server_that_never_greets_is_a_timeout_not_a_refusal() -> None:
    # The kernel completes the handshake into the backlog; nobody ever accepts or answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        settings = SMTPSettings(host="127.0.0.1", port=port, timeout=0.5)
        with pytest.raises(TransportError) as raised:
            SMTPConnection(settings).open()
    assert str(raised.value) == (
        f"SMTP server 127.0.0.1:{port} did not answer within 0.5 s (smtp.timeout)"
    )


def test_nothing_listening_is_a_refusal() -> None:
    port = free_port()
    with pytest.raises(TransportError, match=f"127.0.0.1:{port}: connection refused"):
        SMTPConnection(SMTPSettings(host="127.0.0.1", port=port, timeout=5)).open()


def test_an_unknown_host_says_so() -> None:
    settings = SMTPSettings(host="no-such-host.invalid", port=25, timeout=5)
    with pytest.raises(TransportError, match=r"no-such-host\.invalid:25: unknown host"):
        SMTPConnection(settings).open()
