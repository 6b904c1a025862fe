"""The mailto: half of List-Unsubscribe, and the confirmation mail on the wire."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import socket
from email.message import EmailMessage
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from digest.cli.web import unsubscribe_mail, web
from digest.edition.confirmation import ConfirmationMail
from digest.mail.capture import CaptureServer
from digest.mail.transport import free_port
from digest.operations.inbound import unsubscribe_by_mail, unsubscribe_hook
from digest.operations.publisher import Publisher
from digest.operations.readers import Subscriptions
from digest.web.serving import RedactTokens
from tests.conftest import NOW, RecordingHandler, SeededTemplates
from tests.support.web import status_of, token_for, web_settings

READER = "odon.gyori@example.hu"


def _mail(to: str) -> bytes:
    message = EmailMessage()
    message["From"] = READER
    message["To"] = to
    message["Subject"] = "unsubscribe"
    message.set_content("Please take me off this list.")
    return message.as_bytes()


def test_a_mail_to_the_unsubscribe_address_at_the_capture_server_unsubscribes(
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = web_settings(tmp_path, port, "https://budapestpost.example")
    publisher = Publisher(settings)
    publisher.init(seed=True, now=NOW)
    token = token_for(settings, publisher.store, READER, "daily")
    address = f"unsubscribe+daily.{token}@budapestpost.example"
    forged = f"unsubscribe+weekly.{token}@budapestpost.example"  # daily's token, weekly list
    hook = unsubscribe_hook(settings, clock=lambda: NOW)
    with (
        CaptureServer(tmp_path / "mail", host="127.0.0.1", port=port, on_message=hook),
        smtplib.SMTP("127.0.0.1", port) as client,
    ):
        client.sendmail(READER, [forged], _mail(forged))
        client.sendmail(READER, [address], _mail(address))
    assert status_of(publisher.store, READER, "daily") == "unsubscribed"
    assert status_of(publisher.store, READER, "weekly") == "active"


@pytest.mark.parametrize(
    ("to", "ended"),
    [
        ("unsubscribe+daily.{token}@budapestpost.example", 1),
        ("Reader <unsubscribe+daily.{token}@BudapestPost.example>", 1),
        ("unsubscribe+daily.{token}@elsewhere.example", 0),
        ("unsubscribe+daily.{token}x@budapestpost.example", 0),
        ("unsubscribe+nolist.{token}@budapestpost.example", 0),
        ("editors@budapestpost.example", 0),
    ],
    ids=["plain", "display-name", "other-domain", "altered", "unknown-list", "not-unsubscribe"],
)
def test_a_raw_message_is_read_from_its_headers(
    tmp_path: Path,
    smtp_server: tuple[RecordingHandler, int],
    seeded_templates: SeededTemplates,
    to: str,
    ended: int,
) -> None:
    settings = web_settings(tmp_path, smtp_server[1], "https://budapestpost.example")
    seeded_templates.copy_into(settings)
    publisher = Publisher(settings)
    address = to.format(token=token_for(settings, publisher.store, READER, "daily"))
    subscriptions = Subscriptions(settings, publisher.store)
    assert unsubscribe_by_mail(subscriptions, _mail(address), now=NOW) == ended
    assert status_of(publisher.store, READER, "daily") == ("unsubscribed" if ended else "active")


def test_transactional_mail_is_dot_stuffed_on_the_wire(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int]
) -> None:
    settings = web_settings(tmp_path, smtp_server[1], "https://budapestpost.example")
    data = b"Subject: dots\r\n\r\nfirst\r\n.\r\n.second\r\nlast"
    sent = Subscriptions(settings, Publisher(settings).store).send(
        ConfirmationMail(sender="subscriptions@budapestpost.example", recipient=READER, data=data)
    )
    assert sent
    (received,) = smtp_server[0].messages
    assert received.data == data + b"\r\n"


def test_web_commands_have_help_with_an_example() -> None:
    cli = typer.Typer()
    cli.command()(web)
    cli.command("unsubscribe-mail")(unsubscribe_mail)
    for command in ("web", "unsubscribe-mail"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/u/daily/AQEAAAAAAAAAKg", "/u/daily/[token]"),
        ("/confirm/AQEAAAAA?x=1", "/confirm/[token]?x=1"),
        ("/preferences/AQEAAAAA", "/preferences/[token]"),
        ("/archive/daily/2026-03-02", "/archive/daily/2026-03-02"),
        ("/editor/preview/daily?token=s3cret&at=x", "/editor/preview/daily?token=[token]&at=x"),
        ("/editor/preview/daily?at=x&TOKEN=s3cret", "/editor/preview/daily?at=x&TOKEN=[token]"),
    ],
    ids=["unsubscribe", "confirm", "preferences", "archive", "editor-token", "editor-token-last"],
)
def test_the_access_log_never_shows_a_token(path: str, logged: str) -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", path, "1.1", 200), None,
    )  # fmt: skip
    assert RedactTokens().filter(record)
    assert record.getMessage() == f'127.0.0.1:5 - "GET {logged} HTTP/1.1" 200'


@pytest.mark.parametrize(
    "path", ["/c/AQFtb2tlbg/-", "/c/AQFtb2tlbg/archive", "/o/AQFtb2tlbg/AQFyZWFkZXI"],
    ids=["click", "archive-click", "pixel"],
)  # fmt: skip
def test_the_access_log_leaves_counted_links_out(path: str) -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", path, "1.1", 302), None,
    )  # fmt: skip
    assert not RedactTokens().filter(record)


def test_digest_web_answers_on_sockets_without_nagles_delay() -> None:
    # A response written as head then body must not wait for the client's delayed ACK.
    from digest.cli.web import _listen

    listening = _listen("127.0.0.1", free_port())

    async def accepted() -> int:
        flags: asyncio.Queue[int] = asyncio.Queue()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                flags.put_nowait(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listening)
        async with server:
            _, writer = await asyncio.open_connection(*listening.getsockname()[:2])
            flag = await asyncio.wait_for(flags.get(), 10)
            writer.close()
        return flag

    assert asyncio.run(accepted()) != 0
