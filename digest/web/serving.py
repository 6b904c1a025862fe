"""`digest web` under uvicorn: the server's own limits and a log that keeps no secrets.

uvicorn's keep-alive timer starts only after a response and is reset by every byte, so a
client that sends its headers a byte at a time (slowloris) would hold a connection for ever.
`HeaderDeadline` gives every request head `header_timeout` seconds from the connection's start
or the previous response; h11 refuses a head over `MAX_HEADER_BYTES`. Forwarded headers are
read by the app's TrustedProxies, never by uvicorn, which would trust any local peer.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from digest.config import WebSettings

MAX_HEADER_BYTES = 16 * 1024
# Paths whose last segment is a secret token, and the editor's ?token=: the access log shows
# them cut (EMAIL.md #76).
_TOKEN_PATH = re.compile(r"^(/(?:u/[^/?]+|confirm|preferences)/)[^?]*")
_TOKEN_QUERY = re.compile(r"([?&]token=)[^&#]*", re.IGNORECASE)
_COUNTED = ("/c/", "/o/")  # counted links and the open pixel: never logged


class RedactTokens(logging.Filter):
    """Replace the tokens in logged request paths and queries with "[token]", and leave
    counted links out.

    A line per followed link would tie a client address to a click, which the counts
    themselves never do (and with per_subscriber tracking, to a reader), and at thousands
    of clicks a second it costs the app more than the answer; the counts are in the store.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            if args[2].startswith(_COUNTED):
                return False
            path = _TOKEN_PATH.sub(r"\1[token]", args[2])
            path = _TOKEN_QUERY.sub(r"\1[token]", path)
            record.args = (*args[:2], path, *args[3:])
        return True


class HeaderDeadline(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose next request head is late.

    The deadline is uvicorn's `timeout_keep_alive` (set from `header_timeout`): the same wait
    for the first head as for the next one on a kept-alive connection.
    """

    _deadline: asyncio.TimerHandle | None = None
    _waiting_for: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self._waiting_for:  # a new request's head is complete
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a pipelined request already arrived whole and is being answered
        self._waiting_for = self.cycle
        self._deadline = self.loop.call_later(self.timeout_keep_alive, self._late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _late(self) -> None:
        self._deadline = None
        if self.cycle is self._waiting_for and not self.transport.is_closing():
            self.transport.close()


def server(app: ASGIApp, web: WebSettings, listening: socket.socket) -> uvicorn.Server:
    """A uvicorn server for `app` on the bound socket, with the limits `web` sets."""
    config = uvicorn.Config(
        app,
        host=str(listening.getsockname()[0]),
        port=int(listening.getsockname()[1]),
        http=HeaderDeadline,
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=web.header_timeout,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        log_level="info",
    )
    made = uvicorn.Server(config)  # builds uvicorn's loggers, so the filter can go on
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    return made
