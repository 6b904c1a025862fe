"""Pipelined transactions (RFC 2920) against Postfix's smtp-sink: replies stay in step.

smtp-sink's switches refuse chosen commands, so each refusal is seen at the right stage, and
the next message on the same connection still goes through or is refused the same way, which
it would not be if a reply had been read out of turn.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import threading
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


# smtp-sink's switches and the reply each gives: accepted, or refused at one stage.
EACH_STAGE = pytest.mark.parametrize(
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


@EACH_STAGE
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


@EACH_STAGE
def test_an_envelope_sent_ahead_gets_the_replies_it_would_get_in_turn(
    sink: tuple[int, list[str]], code_class: int, stage: Stage
) -> None:
    port, _ = sink
    sender = "news@budapestpost.example"
    readers = [f"reader{n}@example.com" for n in range(4)]
    with SMTPConnection(SMTPSettings(port=port, timeout=5)) as connection:
        replies = [
            connection.send(sender, reader, MESSAGE, then=(sender, following))
            for reader, following in itertools.pairwise(readers)
        ]
        replies.append(connection.send(sender, readers[-1], MESSAGE))
    assert [(r.code // 100, r.stage) for r in replies] == [(code_class, stage)] * 4, replies


class AheadRelay:
    """Advertises PIPELINING and answers a message's final "." only once the next message's
    MAIL has arrived (but for the last of `messages`): a client that waits for that answer
    before sending MAIL gets nothing, so only one that sends the envelope ahead goes on."""

    def __init__(self, messages: int) -> None:
        self.messages = messages
        self.received: list[bytes] = []
        self.quit = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 ahead.test ESMTP\r\n")
            while line := lines.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-ahead.test\r\n250 PIPELINING\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    body = b""
                    while (data := lines.readline()) not in (b".\r\n", b""):
                        body += data
                    if not data:
                        return  # cut off before the final ".": nothing delivered
                    self.received.append(body)
                    if len(self.received) < self.messages:
                        following = lines.readline()  # held until the client sends it
                        conn.sendall(b"250 queued\r\n")
                        line = following
                        verb = line[:4].upper()
                    else:
                        conn.sendall(b"250 queued\r\n")
                        continue
                if verb == b"QUIT":
                    self.quit = True
                    conn.sendall(b"221 bye\r\n")
                    return
                if verb in (b"MAIL", b"RCPT", b"RSET"):
                    conn.sendall(b"250 ok\r\n")

    def close(self) -> None:
        self._thread.join(timeout=10)
        self._listener.close()


def test_each_message_after_the_first_costs_one_round_trip() -> None:
    relay = AheadRelay(messages=3)
    sender = "news@budapestpost.example"
    readers = ["a@example.com", "b@example.com", "c@example.com"]
    connection = SMTPConnection(SMTPSettings(port=relay.port, timeout=5), transaction_deadline=2)
    connection.open()
    replies = [
        connection.send(sender, readers[0], MESSAGE, then=(sender, readers[1])),
        connection.send(sender, readers[1], MESSAGE, then=(sender, readers[2])),
        connection.send(sender, readers[2], MESSAGE),
    ]
    connection.close()
    relay.close()
    assert [r.code for r in replies] == [250, 250, 250], replies
    assert relay.received == [MESSAGE] * 3 and relay.quit


def test_a_session_closed_with_an_envelope_ahead_delivers_nothing_more() -> None:
    # DATA is open for the envelope sent ahead: QUIT would become its content, and a "."
    # would deliver an empty message. The session is cut off instead.
    relay = AheadRelay(messages=2)
    sender = "news@budapestpost.example"
    connection = SMTPConnection(SMTPSettings(port=relay.port, timeout=5), transaction_deadline=2)
    connection.open()
    reply = connection.send(sender, "a@example.com", MESSAGE, then=(sender, "b@example.com"))
    connection.close()
    relay.close()
    assert reply.code == 250
    assert relay.received == [MESSAGE] and not relay.quit
