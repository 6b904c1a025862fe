"""A relay cannot hold the SMTP client past its deadlines, whatever pace it replies at.

The relay in tests/support/stalling.py trickles `250-` lines faster than the per-read timeout,
so only a wall-clock deadline can end the wait.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from digest.errors import TransportError
from digest.mail.transport import SMTPConnection, Stage
from tests.conftest import settings_for
from tests.support.stalling import Misbehaviour, StallingRelay

DEADLINE = 1.0
SLACK = 0.75  # thread start-up and the socket close, on a busy machine


def connection(tmp_path: Path, relay: StallingRelay) -> SMTPConnection:
    # A per-read timeout far beyond the deadline: each trickled line would reset it.
    settings = settings_for(tmp_path, relay.port).relay().model_copy(update={"timeout": 30.0})
    return SMTPConnection(settings, session_deadline=DEADLINE, transaction_deadline=DEADLINE)


def test_a_trickled_greeting_cannot_hold_the_session_set_up(tmp_path: Path) -> None:
    with StallingRelay(Misbehaviour.TRICKLE_EHLO, interval=0.1) as relay:
        smtp = connection(tmp_path, relay)
        began = time.monotonic()
        with pytest.raises(TransportError, match=r"set-up took over 1 s \(delivery.session_"):
            smtp.open()
        assert time.monotonic() - began < DEADLINE + SLACK
        assert not smtp.is_open


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Misbehaviour.TRICKLE_DOT, r"transaction took over 1 s \(delivery.transaction_deadline\)"),
        (Misbehaviour.STALL_DOT, r"transaction took over 1 s \(delivery.transaction_deadline\)"),
        (Misbehaviour.RESET_DOT, r"Connection reset by peer"),
    ],
    ids=["trickle", "stall", "reset"],
)
def test_a_transaction_ends_within_its_deadline(
    tmp_path: Path, fault: Misbehaviour, reason: str
) -> None:
    with StallingRelay(fault, healthy=1, interval=0.1) as relay:
        smtp = connection(tmp_path, relay)
        smtp.open()
        first = smtp.send("news@example.com", "a@example.com", b"Subject: one\r\n\r\nHi\r\n")
        assert first.accepted
        began = time.monotonic()
        reply = smtp.send("news@example.com", "b@example.com", b"Subject: two\r\n\r\nHi\r\n")
        took = time.monotonic() - began
        assert took < DEADLINE + SLACK
        assert (reply.code, reply.stage) == (0, Stage.DOT)
        assert pytest.approx(took, abs=SLACK) == (0 if fault == Misbehaviour.RESET_DOT else 1)
        assert re.search(reason, reply.text), reply.text
        assert not smtp.is_open  # a transaction that ended without a reply ends the session
        assert len(relay.messages) == 2  # the server read both messages to the end
