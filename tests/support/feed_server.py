"""A real HTTP server for feed and article page tests: http.server in a thread, on loopback.

Each path answers as its Route says (a body, a status, validators for conditional GETs, a
hang until the test ends, a body streamed without a length); every request is recorded with
its headers, in arrival order, so a test can say which pages were read and which were not.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    """What the server answers on one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    hang: bool = False  # answer nothing until the test ends
    stream: int = 0  # send the body, then this many bytes of padding, without a Content-Length


@dataclass
class FeedServer:
    """The routes to serve and every request's path and headers, in arrival order."""

    port: int = 0
    host: str = "127.0.0.1"
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [headers for seen, headers in self.requests if seen == path]

    def paths(self) -> list[str]:
        return [seen for seen, _ in self.requests]


class Handler(BaseHTTPRequestHandler):
    feed_server: FeedServer

    def do_GET(self) -> None:
        server = self.feed_server
        server.requests.append((self.path, dict(self.headers.items())))
        route = server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        if route.hang:
            server.release.wait(timeout=30)
            return
        validators = {"ETag": route.etag, "Last-Modified": route.last_modified}
        validators = {name: value for name, value in validators.items() if value}
        if (route.etag and self.headers.get("If-None-Match") == route.etag) or (
            route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified
        ):
            self.send_response(304)
            for name, value in validators.items():
                self.send_header(name, value)
            self.end_headers()
            return
        self.send_response(route.status)
        for name, value in {**validators, **route.headers}.items():
            self.send_header(name, value)
        if route.stream:
            self.end_headers()  # HTTP/1.0 without a length: the body runs until the socket closes
            self._stream(route.stream)
            return
        self.send_header(
            "Content-Length", route.headers.get("Content-Length", str(len(route.body)))
        )
        self.end_headers()
        self.wfile.write(route.body)

    def _stream(self, size: int) -> None:
        chunk = b"<!-- padding -->" * 4096
        try:
            self.wfile.write(self.feed_server.routes[self.path].body)
            for _ in range(size // len(chunk)):
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading at its cap, as it should

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(host: str = "127.0.0.1") -> Iterator[FeedServer]:
    """A server on `host` and a free port, shut down (hanging answers released) on exit."""
    state = FeedServer(host=host)
    handler = type("BoundHandler", (Handler,), {"feed_server": state})
    httpd = ThreadingHTTPServer((host, 0), handler)  # port 0: the OS picks a free one
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    # A short poll interval only makes shutdown() return sooner; nothing waits on it.
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()
