"""`digest web` and `digest unsubscribe-mail`: the reader-facing entry points.

Registered by the main command:
    from digest.cli.web import unsubscribe_mail, web
    commands.command()(web)
    commands.command("unsubscribe-mail")(unsubscribe_mail)
"""

from __future__ import annotations

import errno
import logging
import re
import socket
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from digest.cli.context import context
from digest.errors import ConfigError

# Paths whose last segment is a secret token; the access log shows them cut (EMAIL.md #76).
_TOKEN_PATH = re.compile(r"^(/(?:u/[^/?]+|confirm|preferences)/)[^?]*")


class RedactTokens(logging.Filter):
    """Replace the token in logged request paths with "[token]"."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = _TOKEN_PATH.sub(r"\1[token]", args[2])
            record.args = (*args[:2], path, *args[3:])
        return True


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
    import uvicorn  # only `digest web` serves

    from digest.web import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=address,
        port=number,
        proxy_headers=True,
        server_header=False,
        log_level="info",
    )
    server = uvicorn.Server(config)  # builds uvicorn's loggers, so the filter can go on
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    server.run(sockets=[listening])


def _listen(host: str, port: int) -> socket.socket:
    """The bound socket uvicorn serves on: bound here, so a port in use is one line, not
    uvicorn's log and exit."""
    listening = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
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
