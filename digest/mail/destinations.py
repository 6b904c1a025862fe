"""Where a feed request may go: the server-side request forgery guard.

A feed URL is given by an editor or a config file, and a redirect by whoever runs the feed's
server; either could point the poller at this machine or its network (a metadata service, an
admin page, a database). So a host is resolved here, before connecting, and refused when any of
its addresses is loopback, private, link-local, multicast, reserved or unspecified (IPv4-mapped
IPv6 addresses as the IPv4 address they carry). Resolving first also catches odd spellings such
as `http://2130706433/` or `http://0x7f.1/`, which the resolver reads as 127.0.0.1. The caller
connects to the address checked here, so a second lookup cannot answer differently.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from digest.errors import FeedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_HOW = "feeds may not be read from it unless [feeds] allow_private = true or allow_networks has it"


@dataclass(frozen=True, slots=True)
class Destinations:
    """Which addresses feed requests may reach: public ones, plus `networks`, or all of them
    with `allow_private` (`[feeds] allow_private`, `[feeds] allow_networks`)."""

    allow_private: bool = False
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, *, allow_private: bool, networks: Sequence[str]) -> Destinations:
        """From the settings' values (networks already checked as CIDR blocks)."""
        return cls(allow_private, tuple(ipaddress.ip_network(item) for item in networks))

    def why_not(self, address: IPAddress) -> str | None:
        """The kind of address it is when requests must not go there, else None."""
        plain = _unmapped(address)
        if self.allow_private or any(plain in network for network in self.networks):
            return None
        for kind, found in (
            ("loopback", plain.is_loopback),
            ("unspecified", plain.is_unspecified),
            ("link-local", plain.is_link_local),
            ("multicast", plain.is_multicast),
            ("reserved", plain.is_reserved),
            ("private", plain.is_private),
            ("reserved", not plain.is_global),  # such as 100.64.0.0/10, shared by carriers
        ):
            if found:
                return kind
        return None

    def resolve(self, url: str, host: str, port: int) -> str:
        """The address to connect to for `host`; FeedError if the name does not resolve or
        any of its addresses is one requests must not reach."""
        name = host.lower().rstrip(".")
        if not self.allow_private and (name == "localhost" or name.endswith(".localhost")):
            # RFC 6761: these name this machine whatever the resolver says, or fails to.
            raise FeedError(f"{url}: {host} is this machine, a loopback address; {_HOW}")
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FeedError(f"{url}: cannot resolve {host!r}: {exc}") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
        for address in addresses:
            kind = self.why_not(address)
            if kind is not None:
                raise FeedError(f"{url}: {host} is {address}, a {kind} address; {_HOW}")
        return str(addresses[0])


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
