"""What happens to a request before any route sees it: the body cap, and the proxy's word on
who the client is and how it came.

`BodyLimit` answers 413 to a declared Content-Length over the cap before reading anything, and
to a body that grows past it while read, so no form parser ever holds more than the cap.
`TrustedProxies` believes X-Forwarded-For and X-Forwarded-Proto only from the configured
proxies: the client is the rightmost address in the chain that is not one of them, so a
client cannot spoof its way around the per-IP limits by sending the header itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_TOO_LARGE = b"Request body too large\n"


class _BodyTooLarge(Exception):
    """Raised from `receive` when the body passes the cap; BodyLimit turns it into a 413."""


class BodyLimit:
    """ASGI middleware: at most `limit` bytes of request body, else 413 Content Too Large."""

    def __init__(self, app: ASGIApp, *, limit: int, paths: dict[str, int] | None = None) -> None:
        self.app = app
        self.default = limit
        self.paths = paths or {}  # a larger (or smaller) cap for these exact paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope["path"], self.default)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send)  # nothing read: the server closes the connection
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except _BodyTooLarge:
            if started:
                raise
            await _too_large(send)


async def _too_large(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(_TOO_LARGE)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _TOO_LARGE})


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """ASGI middleware: the client address and scheme as the trusted proxies report them."""

    def __init__(self, app: ASGIApp, *, proxies: Sequence[str]) -> None:
        self.app = app
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(item, strict=False) for item in proxies
        )

    def trusted(self, host: str) -> bool:
        """Whether `host` (an address as a string) is one of the configured proxies."""
        try:
            address = ipaddress.ip_address(host.strip().strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and client and self.trusted(client[0]):
            headers = Headers(scope=scope)
            chain = [
                hop.strip()
                for value in headers.getlist("x-forwarded-for")
                for hop in value.split(",")
                if hop.strip()
            ]
            scope = dict(scope)
            if chain:
                untrusted = [hop for hop in chain if not self.trusted(hop)]
                # All trusted: the request began at the first proxy.
                scope["client"] = (untrusted[-1] if untrusted else chain[0], 0)
            proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                scope["scheme"] = proto
        await self.app(scope, receive, send)
