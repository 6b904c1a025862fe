"""Pipelined transactions (RFC 2920) against Postfix's smtp-sink: replies stay in step.

smtp-sink's switches refuse chosen commands, so each refusal is seen at the right stage, and
the next message on the same connection still goes through or is refused the same way, which
it would not be if a reply had been read out of turn.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from digest.config import SMTPSettings
from digest.mail.transport import SMTPConnection, Stage, free_port

SINK = shutil.which("smtp-sink") or (
    "/usr/sbin/smtp-sink" if os.path.exists("/usr/sbin/smtp-sink") else None
)
MESSAGE = b"Subject: hi\r\nTo: b@example.com\r\n\r\n=2Eline one\r\n"


@pytest.fixture
def sink(request: pytest.FixtureRequest) -> Iterator[tuple[int, list[str]]]:
    if SINK is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Postfix's smtp-sink is missing; .ci/run installs it (make services)")
        pytest.skip("Postfix's smtp-sink is not installed (apt-get install postfix)")
    flags: list[str] = request.param
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    process = subprocess.Popen([SINK, *user, *flags, f"127.0.0.1:{port}", "16"])
    deadline = time.monotonic() + 10
    while True:  # bounded wait for the listening socket
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert time.monotonic() < deadline, "smtp-sink did not start"
        time.sleep(0.02)
    try:
        yield port, flags
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("sink", "code_class", "stage"),
    [
        ([], 2, Stage.DOT),
        (["-p"], 2, Stage.DOT),
        (["-r", "mail"], 4, Stage.MAIL),
        (["-f", "rcpt"], 5, Stage.RCPT),
        (["-f", "data"], 5, Stage.DATA),
        (["-f", "."], 5, Stage.DOT),
    ],
    ids=["accepts", "no-pipelining", "mail-4xx", "rcpt-5xx", "data-5xx", "dot-5xx"],
    indirect=["sink"],
)
def test_each_reply_is_read_at_its_stage(
    sink: tuple[int, list[str]], code_class: int, stage: Stage
) -> None:
    port, _ = sink
    with SMTPConnection(SMTPSettings(port=port, timeout=5)) as connection:
        replies = [
            connection.send("news@budapestpost.example", "b@example.com", MESSAGE) for _ in range(3)
        ]
    assert [(r.code // 100, r.stage) for r in replies] == [(code_class, stage)] * 3, replies


@pytest.mark.parametrize("sink", [["-q", "rcpt"]], ids=["hang-up-at-rcpt"], indirect=True)
def test_a_hang_up_mid_envelope_is_no_reply_before_the_data(sink: tuple[int, list[str]]) -> None:
    port, _ = sink
    connection = SMTPConnection(SMTPSettings(port=port, timeout=5))
    connection.open()
    reply = connection.send("news@budapestpost.example", "b@example.com", MESSAGE)
    assert reply.code == 0 and reply.stage in (Stage.RCPT, Stage.DATA)
    assert not connection.is_open


@pytest.mark.parametrize(
    ("sink", "stage"),
    [(["-Q", "mail"], Stage.MAIL), (["-Q", "rcpt"], Stage.RCPT), (["-Q", "data"], Stage.DATA)],
    ids=["421-at-mail", "421-at-rcpt", "421-at-data"],
    indirect=["sink"],
)
def test_a_421_mid_pipeline_keeps_its_text(sink: tuple[int, list[str]], stage: Stage) -> None:
    # The server says why it closes and hangs up: the replies after it never come, and the
    # ledger must record the 421 and its text, not "connection unexpectedly closed".
    port, _ = sink
    connection = SMTPConnection(SMTPSettings(port=port, timeout=5))
    connection.open()
    reply = connection.send("news@budapestpost.example", "b@example.com", MESSAGE)
    assert (reply.code, reply.stage) == (421, stage), reply
    assert reply.text and "unexpectedly" not in reply.text
    assert not connection.is_open
