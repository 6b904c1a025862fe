"""The in-process relay answers as scripted and behaves like an SMTP session to its caller."""

from __future__ import annotations

import pytest

from digest.errors import TransportError
from digest.mail.fake import FakeRelay, deferred, dropped, refused
from digest.mail.transport import Stage

MESSAGE = b"Subject: hi\r\n\r\n.a line that starts with a dot\r\n"


def test_accepts_and_keeps_what_it_is_sent() -> None:
    relay = FakeRelay()
    session = relay.connect()
    session.open()
    reply = session.send("news@budapestpost.example", "anna@example.hu", MESSAGE)
    assert (reply.accepted, reply.stage, session.sent_on_connection) == (True, Stage.DOT, 1)
    [kept] = relay.to("anna@example.hu")
    assert (kept.sender, kept.data) == ("news@budapestpost.example", MESSAGE)


def test_scripted_replies_come_in_order_then_acceptance() -> None:
    relay = FakeRelay()
    relay.script("anna@example.hu", deferred(), refused())
    session = relay.connect()
    session.open()
    codes = [session.send("a@b.example", "anna@example.hu", MESSAGE).code for _ in range(3)]
    assert codes == [451, 550, 250]
    assert len(relay.sent) == 1 and session.is_open


def test_a_drop_closes_the_session_and_after_the_dot_the_message_arrived() -> None:
    relay = FakeRelay()
    relay.script("anna@example.hu", dropped(Stage.RCPT), dropped())
    session = relay.connect()
    session.open()
    first = session.send("a@b.example", "anna@example.hu", MESSAGE)
    assert (first.code, first.stage, session.is_open) == (0, Stage.RCPT, False)
    with pytest.raises(TransportError):
        session.send("a@b.example", "anna@example.hu", MESSAGE)
    session.open()
    assert session.send("a@b.example", "anna@example.hu", MESSAGE).stage == Stage.DOT
    assert len(relay.sent) == 1 and relay.sessions == 2


def test_a_relay_that_is_down_refuses_sessions() -> None:
    relay = FakeRelay(down="cannot reach SMTP server 127.0.0.1:25: connection refused")
    with pytest.raises(TransportError, match="connection refused"):
        relay.connect().open()
    relay.down = ""
    relay.connect().open()
    assert relay.sessions == 1
