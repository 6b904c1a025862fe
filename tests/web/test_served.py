"""`digest web` as it is run, a separate process under uvicorn, against raw sockets: the body
cap, the header deadline, forwarded headers only from trusted proxies, HSTS, and an access log
that keeps no tokens.

The trusted proxy is 127.0.0.2; requests from 127.0.0.1 play a client on the internet (Linux
routes all of 127.0.0.0/8 to the loopback interface, so a socket can be bound to either).
"""

from __future__ import annotations

import http.client
import os
import re
import select
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import pytest

from digest.mail.transport import free_port
from digest.operations.publisher import Publisher
from tests.conftest import NOW, settings_for
from tests.support.web import CSRF_INPUT, EDITOR_TOKEN, start_web

PROXY, CLIENT = "127.0.0.2", "127.0.0.1"
SIGNUPS_PER_IP = 4
HEADER_TIMEOUT = 1
MAX_BODY = 16_384


@dataclass
class Served:
    """The running `digest web` and what it has logged so far."""

    port: int
    process: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def connect(self, source: str = CLIENT) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=5, source_address=(source, 0)
        )

    def raw(self, source: str = CLIENT) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), 5, source_address=(source, 0))

    def wait_for_log(self, found: Callable[[str], bool], timeout: float = 10) -> str:
        """The first log line for which `found` is true, waiting for it to be written."""
        with self.changed:
            ok = self.changed.wait_for(lambda: any(found(line) for line in self.lines), timeout)
            assert ok, "\n".join(self.lines)
            return next(line for line in self.lines if found(line))

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert found
        return int(found.group(1))


def _collect(served: Served) -> None:
    assert served.process.stdout is not None
    for raw in served.process.stdout:
        with served.changed:
            served.lines.append(raw.decode("utf-8", "replace").rstrip())
            served.changed.notify_all()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("served")
    smtp_port, port = free_port(), free_port()
    settings = settings_for(folder, smtp_port)
    Publisher(settings).init(seed=False, now=NOW)
    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": settings.database_url,
        "DIGEST_SMTP__PORT": str(smtp_port),
        "DIGEST_WEB__EDITOR_TOKEN": EDITOR_TOKEN,
        "DIGEST_WEB__TRUSTED_PROXIES": f'["{PROXY}"]',
        "DIGEST_WEB__SIGNUPS_PER_IP_PER_HOUR": str(SIGNUPS_PER_IP),
        "DIGEST_WEB__HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "DIGEST_WEB__MAX_BODY_BYTES": str(MAX_BODY),
    }
    process = start_web(port, env)
    running = Served(port, process)
    reader = threading.Thread(target=_collect, args=(running,), daemon=True)
    reader.start()
    try:
        running.wait_for_log(lambda line: "Application startup complete" in line)
        yield running
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=10)


def status_of_answer(sock: socket.socket) -> tuple[int, bytes]:
    """The status code of the answer on `sock`, and all the bytes read until it closed."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass  # the server closed with body bytes unread: what it said before still counts
    found = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    assert found, data[:200]
    return int(found.group(1)), data


def push_until_answered(sock: socket.socket, head: bytes, chunk: bytes, limit: int) -> int:
    """Send `head`, then `chunk` after chunk until the server answers (or `limit` bytes went);
    the number of body bytes sent."""
    sock.sendall(head)
    sock.setblocking(False)
    sent = 0
    while sent < limit:
        readable, writable, _ = select.select([sock], [sock], [], 5)
        if readable:
            break
        assert writable, "the server neither read nor answered for 5 s"
        try:
            sent += sock.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
    sock.setblocking(True)
    return sent


HUNDRED_MB = 100 * 1024 * 1024
CHUNK = b"a" * 65536


@pytest.mark.parametrize("path", ["/preferences/x", "/subscribe", "/u/daily/x"])
def test_a_declared_huge_body_is_413_before_it_is_sent(served: Served, path: str) -> None:
    before = served.rss_kib()
    with served.raw() as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: digest\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {HUNDRED_MB}\r\n\r\n"
        ).encode()
        sent = push_until_answered(sock, head, CHUNK, HUNDRED_MB)
        status, _ = status_of_answer(sock)
    assert status == 413
    assert sent < 10 * 1024 * 1024  # answered long before the body was all sent
    assert served.rss_kib() - before < 20 * 1024  # and nothing was kept of it


def test_a_streamed_body_without_a_length_is_cut_at_the_cap(served: Served) -> None:
    before = served.rss_kib()
    with served.raw() as sock:
        head = (
            b"POST /preferences/x HTTP/1.1\r\nHost: digest\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
        sent = push_until_answered(sock, head, chunk, HUNDRED_MB)
        status, _ = status_of_answer(sock)
    assert status == 413 and sent < 10 * 1024 * 1024
    assert served.rss_kib() - before < 20 * 1024


def test_a_small_form_still_goes_through(served: Served) -> None:
    connection = served.connect()
    body = urlencode({"csrf_token": "x", "list": "daily"})
    connection.request(
        "POST", "/preferences/x", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert connection.getresponse().status == 403  # parsed, and refused for its CSRF token


def test_headers_sent_a_byte_at_a_time_are_cut_off(served: Served) -> None:
    head = b"GET /subscribe HTTP/1.1\r\nHost: digest\r\nX-Padding: " + b"p" * 200
    with served.raw() as sock:
        started = time.monotonic()
        closed_after = None
        for byte in head:  # a slow client, as slowloris is: ten bytes a second
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable and sock.recv(1) == b"":
                closed_after = time.monotonic() - started
                break
            sock.send(bytes([byte]))
    assert closed_after is not None, "the connection stayed open for the whole head"
    # The server's timer starts when it accepts, a moment apart from the client's clock.
    assert HEADER_TIMEOUT - 0.05 <= closed_after < HEADER_TIMEOUT + 2


def test_a_head_that_never_ends_is_refused(served: Served) -> None:
    with served.raw() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: digest\r\nX-Big: " + b"b" * 40_000)
        status, _ = status_of_answer(sock)
    assert status == 400


def test_the_access_log_has_no_editor_token(served: Served) -> None:
    connection = served.connect()
    connection.request("GET", f"/editor/preview/daily?token={EDITOR_TOKEN}")
    connection.getresponse().read()
    connection.request("GET", "/u/daily/AQEAAAAAAAAAKgSECRET")
    connection.getresponse().read()
    served.wait_for_log(lambda line: "/u/daily/[token]" in line)
    line = served.wait_for_log(lambda line: "/editor/preview/daily" in line)
    assert "?token=[token]" in line
    assert not [line for line in served.lines if EDITOR_TOKEN in line or "SECRET" in line]


def sign_up(served: Served, source: str, forwarded: str | None) -> int:
    """One sign-up POST (the honeypot filled, so nothing is stored or sent); its status."""
    connection = served.connect(source)
    connection.request("GET", "/subscribe")
    page = connection.getresponse()
    cookie = (page.getheader("set-cookie") or "").split(";")[0]
    found = CSRF_INPUT.search(page.read().decode())
    assert found and cookie
    form = {"csrf_token": found.group(1), "email": "a@example.com", "list": "daily"}
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    connection.request("POST", "/subscribe", urlencode({**form, "website": "x"}), headers)
    answer = connection.getresponse()
    answer.read()
    connection.close()
    return answer.status


def test_a_spoofed_forwarded_for_does_not_get_around_the_limit(served: Served) -> None:
    # From an untrusted peer the header is ignored: fifty made-up addresses are one client.
    statuses = [sign_up(served, CLIENT, f"203.0.113.{n}") for n in range(1, 51)]
    assert statuses[:SIGNUPS_PER_IP] == [200] * SIGNUPS_PER_IP
    assert set(statuses[SIGNUPS_PER_IP:]) == {429}


def test_through_the_trusted_proxy_the_rightmost_untrusted_hop_is_the_client(
    served: Served,
) -> None:
    # Each reader behind the proxy has a limit of their own...
    assert [sign_up(served, PROXY, f"198.51.100.{n}") for n in range(1, 8)] == [200] * 7
    # ...and what a reader puts in front of the proxy's entry changes nothing.
    spoofed = [sign_up(served, PROXY, f"10.9.9.{n}, 192.0.2.77") for n in range(1, 8)]
    assert spoofed == [200] * SIGNUPS_PER_IP + [429] * (7 - SIGNUPS_PER_IP)


@pytest.mark.parametrize(
    ("source", "proto", "hsts"),
    [
        (PROXY, "https", True),
        (PROXY, "http", False),
        (CLIENT, "https", False),
        (PROXY, None, False),
    ],
    ids=["proxy-says-https", "proxy-says-http", "client-says-https", "proxy-says-nothing"],
)
def test_hsts_when_a_trusted_proxy_says_https(
    served: Served, source: str, proto: str | None, hsts: bool
) -> None:
    connection = served.connect(source)
    connection.request("GET", "/subscribe", headers={"X-Forwarded-Proto": proto} if proto else {})
    answer = connection.getresponse()
    answer.read()
    expected = "max-age=31536000" if hsts else None
    assert answer.getheader("strict-transport-security") == expected
    assert ("; secure" in (answer.getheader("set-cookie") or "").lower()) is hsts
