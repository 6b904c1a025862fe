"""The feed poller reaches public addresses only: a URL or a redirect to this machine or its
network is refused before any connection, in whatever spelling, against a real local server."""

from __future__ import annotations

import ipaddress
import re

import pytest

from digest.config import FeedsSettings
from digest.errors import FeedError
from digest.mail.destinations import Destinations
from digest.mail.fetching import fetch
from tests.mail.test_feeds_http import FEEDS, FeedServer, Route

RSS = (FEEDS / "rss.xml").read_bytes()


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("2130706433", "loopback"),
        ("0x7f.1", "loopback"),
        ("0177.0.0.1", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("[::1]", "loopback"),
        ("localhost.", "loopback"),
        ("feeds.localhost", "loopback"),
        ("0.0.0.0", "unspecified"),
    ],
    ids=[
        "dotted",
        "decimal",
        "hex-short",
        "octal",
        "ipv4-mapped",
        "ipv6",
        "localhost-dot",
        "dot-localhost",
        "zero",
    ],
)
def test_this_machine_is_refused_in_any_spelling(server: FeedServer, host: str, kind: str) -> None:
    server.routes["/feed.xml"] = Route(body=RSS)
    url = f"http://{host}:{server.port}/feed.xml"
    with pytest.raises(FeedError, match=f"a {kind} address; feeds may not be read"):
        fetch(url, limits=FeedsSettings())
    assert server.requests == []  # refused before connecting


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", "link-local"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("fd00::1", "private"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "reserved"),
        ("240.0.0.1", "reserved"),
        ("::ffff:10.0.0.1", "private"),
    ],
    ids=[
        "metadata",
        "ten",
        "home",
        "ula",
        "v6-link-local",
        "multicast",
        "cgnat",
        "class-e",
        "mapped",
    ],
)
def test_each_kind_of_inner_address_is_named(address: str, kind: str) -> None:
    assert Destinations().why_not(ipaddress.ip_address(address)) == kind


def test_public_addresses_pass_and_allowed_networks_open_a_hole() -> None:
    assert Destinations().why_not(ipaddress.ip_address("193.225.0.1")) is None
    assert Destinations().why_not(ipaddress.ip_address("2001:4860:4860::8888")) is None
    own = Destinations.of(allow_private=False, networks=["10.1.2.0/24"])
    assert own.why_not(ipaddress.ip_address("10.1.2.9")) is None
    assert own.why_not(ipaddress.ip_address("10.1.3.9")) == "private"


def test_allow_private_reaches_them_and_keeps_the_host_header(server: FeedServer) -> None:
    server.routes["/feed.xml"] = Route(body=RSS)
    fetched = fetch(
        f"http://localhost:{server.port}/feed.xml", limits=FeedsSettings(allow_private=True)
    )
    assert fetched.body == RSS
    ((path, headers),) = server.requests
    assert path == "/feed.xml" and headers["Host"] == f"localhost:{server.port}"


def test_every_redirect_hop_is_checked_again(server: FeedServer) -> None:
    # The first hop is allowed (its network is listed); the redirect to another loopback
    # address is not, and is refused before it is followed.
    server.routes["/moved.xml"] = Route(
        status=302, headers={"Location": f"http://127.0.0.2:{server.port}/feed.xml"}
    )
    server.routes["/feed.xml"] = Route(body=RSS)
    limits = FeedsSettings(allow_networks=("127.0.0.1/32",))
    with pytest.raises(FeedError, match=re.escape("127.0.0.2 is 127.0.0.2, a loopback address")):
        fetch(server.url("/moved.xml"), limits=limits)
    assert [path for path, _ in server.requests] == ["/moved.xml"]

    server.routes["/moved.xml"] = Route(status=301, headers={"Location": "/feed.xml"})
    fetched = fetch(server.url("/moved.xml"), limits=limits)
    assert (fetched.url, fetched.body) == (server.url("/feed.xml"), RSS)


def test_a_redirect_loop_ends(server: FeedServer) -> None:
    server.routes["/loop.xml"] = Route(status=302, headers={"Location": "/loop.xml"})
    with pytest.raises(FeedError, match="more than 5 redirects"):
        fetch(server.url("/loop.xml"), limits=FeedsSettings(allow_private=True))
    assert len(server.requests) == 6


def test_a_bad_allowed_network_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="not a network"):
        FeedsSettings(allow_networks=("10.0.0.0/33",))
