"""`digest web` and `digest unsubscribe-mail`: the reader-facing entry points.

Registered by the main command:
    from digest.cli.web import unsubscribe_mail, web
    commands.command()(web)
    commands.command("unsubscribe-mail")(unsubscribe_mail)
"""

from __future__ import annotations

import errno
import socket
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from digest.cli.context import context
from digest.errors import ConfigError


def web(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: web.host).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: web.port).")] = None,
) -> None:
    """Serve sign-up, confirmation, one-click unsubscribe, preferences, the archive and the
    editor preview; put it behind an HTTPS proxy answering at site.base_url. Ctrl-C stops it.

    Example: digest web --host 127.0.0.1 --port 8080
    """
    settings = context(ctx).settings
    address, number = host or settings.web.host, port or settings.web.port
    listening = _listen(address, number)
    from digest.web import create_app  # only `digest web` loads Starlette and uvicorn
    from digest.web.serving import server

    server(create_app(settings), settings.web, listening).run(sockets=[listening])


def _listen(host: str, port: int) -> socket.socket:
    """The bound socket uvicorn serves on: bound here, so a port in use is one line, not
    uvicorn's log and exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Named TCP, not left to the default protocol 0: asyncio turns Nagle's algorithm off
    # (TCP_NODELAY) only on sockets that say they are TCP, and with it on, a response written
    # as head then body waits for the client's delayed ACK, about 40 ms a request.
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
        # Listening from here on: a client that comes while the app starts waits, not refused.
        listening.listen(2048)
    except OSError as exc:
        listening.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is in use") from exc
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return listening


def unsubscribe_mail(
    ctx: typer.Context,
    recipient: Annotated[
        list[str] | None,
        typer.Option(
            "--recipient", "-r", help="Envelope recipient (repeatable; default: the headers)."
        ),
    ] = None,
) -> None:
    """Read one mail on stdin; if it went to a genuine unsubscribe+LIST.TOKEN address, end
    that subscription (for an MTA pipe, e.g. Postfix's pipe(8) with ${recipient}).

    Example: digest unsubscribe-mail --recipient 'unsubscribe+daily.TOKEN@example.com' < mail.eml
    """
    from digest.operations.inbound import unsubscribe_by_mail
    from digest.operations.readers import Subscriptions

    settings = context(ctx).settings
    subscriptions = Subscriptions(settings, context(ctx).store)
    done = unsubscribe_by_mail(
        subscriptions, sys.stdin.buffer.read(), envelope=recipient or (), now=datetime.now(UTC)
    )
    typer.echo(f"{done} subscription(s) ended")
