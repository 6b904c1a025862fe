"""Running `digest` as a user does: a separate process, in the checkout, with its own env.

The process is forked from a warm interpreter (tests/support/warm.py) that has imported
digest's dependencies once per test process, so a command costs its own work, not a cold start.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_TIMEOUT = 60.0


class _WarmServer:
    """One warm interpreter per test process, started on first use."""

    def __init__(self) -> None:
        folder = tempfile.mkdtemp(prefix="digest-warm-")
        self.path = os.path.join(folder, "socket")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.warm", self.path],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        if ready.strip() != "ready":
            self.process.kill()
            raise RuntimeError(f"the warm interpreter did not start: {ready!r}")
        atexit.register(self.stop)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        os.unlink(self.path)
        os.rmdir(os.path.dirname(self.path))


@functools.cache
def _warm() -> _WarmServer:
    return _WarmServer()


def _decoded(data: bytes) -> str:
    # As subprocess's text mode reads: the locale's encoding, universal newlines.
    return data.decode().replace("\r\n", "\n").replace("\r", "\n")


def run(
    *args: str,
    env: dict[str, str | None] | None = None,
    cwd: Path = ROOT,
    stdin: str = "",
    timeout: float = _TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """`python -m digest ARGS`, output captured as text; never raises for a non-zero exit.

    `env` adds to this process's environment; a None value removes that variable. `stdin` is
    what the command reads on its standard input (a few KB at most). Past `timeout` seconds
    the command is killed and TimeoutExpired raised.
    """
    environment = {**os.environ, **(env or {})}
    request = {
        "args": list(args),
        "env": {name: value for name, value in environment.items() if value is not None},
        "cwd": str(cwd),
    }
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    if stdin:
        source, sink = os.pipe()
        os.write(sink, stdin.encode())  # fits in the pipe's buffer: nobody reads it yet
        os.close(sink)
    else:
        source = os.open(os.devnull, os.O_RDONLY)
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as connection:
        connection.connect(_warm().path)
        socket.send_fds(connection, [json.dumps(request).encode()], [source, out_write, err_write])
        for fd in (source, out_write, err_write):
            os.close(fd)
        pid = json.loads(connection.recv(4096))["pid"]
        output = _read_until_closed(out_read, err_read, pid, args, timeout)
        code = json.loads(connection.recv(4096))["code"]
    return subprocess.CompletedProcess(
        ["digest", *args], code, _decoded(output[out_read]), _decoded(output[err_read])
    )


def _read_until_closed(
    out_read: int, err_read: int, pid: int, args: tuple[str, ...], timeout: float
) -> dict[int, bytes]:
    """Both streams to their end, as subprocess.run reads them; past the timeout, kill."""
    deadline = time.monotonic() + timeout
    chunks: dict[int, list[bytes]] = {out_read: [], err_read: []}
    with selectors.DefaultSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(["digest", *args], timeout)
            for key, _ in selector.select(remaining):
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
                    os.close(key.fd)
    return {fd: b"".join(parts) for fd, parts in chunks.items()}


def cli_environment(database: Path, *, port: int, folder: Path) -> dict[str, str]:
    """The variables that point `digest` at a test's database, SMTP server and folder."""
    return {
        "DIGEST_DATABASE_URL": f"sqlite:///{database}",
        "DIGEST_SMTP__PORT": str(port),
        "DIGEST_PREVIEW_DIR": str(folder / "preview"),
    }
