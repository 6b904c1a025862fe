"""A warm interpreter that runs `python -m digest` in forked children.

Each CLI test runs the command in a process of its own, with its own environment, working
folder, standard streams and exit status. Starting Python and importing SQLAlchemy, pydantic,
Jinja2 and the rest costs over a second of CPU a command, most of a CLI test's time; this
server imports them once, then forks a child per command. The child is a fresh process in all
that the command sees: it runs `digest/__main__.py` as `__main__` through runpy (as `-m`
does) and ends as the interpreter ends it, so exceptions, exit codes, atexit handlers and
threads behave as in a cold start. A cold start is still tested where it matters: the
terminal, signal and crash tests start `python -m digest` themselves.

Protocol, over a SOCK_SEQPACKET Unix socket: the client sends one JSON request (argv, env,
cwd) with stdin, stdout and stderr attached as file descriptors; the server answers with the
child's pid, then its exit code.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import socket
import sys
import time
from typing import Any

# What every command imports between them: loaded once, before any fork.
PRELOAD = (
    "digest.cli",
    "digest.config",
    "digest.operations.publisher",
    "digest.operations.delivery",
    "digest.operations.ingest",
    "digest.operations.seeding",
    "digest.edition.render",
    "digest.intake.people",
    "digest.mail.dkim",
    "digest.mail.transport",
    "digest.service.scheduler",
    "premailer",
    "sqlalchemy.dialects.sqlite",
)


def serve(path: str) -> dict[str, Any] | None:
    """Accept requests until the socket closes; in a forked child, return its request."""
    for name in PRELOAD:
        importlib.import_module(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen()
    print("ready", flush=True)
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:
            return None
        with connection:
            message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
            if not message:
                continue
            request = json.loads(message)
            pid = os.fork()
            if pid == 0:
                listener.close()
                connection.close()
                for target, fd in enumerate(fds):
                    os.dup2(fd, target)
                    os.close(fd)
                return request
            for fd in fds:
                os.close(fd)
            try:
                connection.send(json.dumps({"pid": pid}).encode())
                _, status = os.waitpid(pid, 0)
                connection.send(json.dumps({"code": os.waitstatus_to_exitcode(status)}).encode())
            except OSError:
                # The client went away (a timeout killed the child): reap it, unless the
                # waitpid above already did, so the server lives on for the next command.
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)


def become(request: dict[str, Any]) -> None:
    """In the child: take the request's environment and folder, then run the command."""
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    os.chdir(request["cwd"])
    sys.path[0] = request["cwd"]
    sys.argv = ["digest", *request["args"]]
    runpy.run_module("digest", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    command = serve(sys.argv[1])
    if command is not None:
        become(command)
