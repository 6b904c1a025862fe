"""The only code that speaks SMTP: one connection, many transactions, replies as values.

A transaction never raises for what the server answers; it returns a `Reply` saying at which
stage it ended, so the delivery layer can classify by reply code. Only failing to open the
session at all (unreachable, TLS or AUTH refused) raises `TransportError`.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType

from digest.config import SMTPSettings
from digest.errors import ConfigError, TransportError
from digest.mail.deadline import BoundedSMTP, BoundedSMTPSSL, DeadlineExceeded
from digest.models import SMTPSecurity

_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_PLAIN_ADDRESS = re.compile(r"[!-;=?-~]+@[A-Za-z0-9.-]+")  # printable ASCII, no <, >, space
_QUIT_WAIT = 5.0  # QUIT is a courtesy: a silent server gets no more than this


class Stage(StrEnum):
    """Where in the SMTP transaction a reply (or the lack of one) came."""

    PREPARE = "prepare"  # before any SMTP: the message itself could not be made
    CONNECT = "connect"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    DOT = "dot"  # after the final ".": the server may have the message even without a reply


@dataclass(frozen=True, slots=True)
class Reply:
    """The server's last word on one transaction; code 0 means no reply came (drop, timeout)."""

    code: int
    text: str
    stage: Stage

    @property
    def accepted(self) -> bool:
        """True when the server took responsibility for the message."""
        return 200 <= self.code < 300

    def __str__(self) -> str:
        return f"{self.code} {self.text}" if self.code else f"no reply at {self.stage}: {self.text}"


Envelope = tuple[str, str]  # (envelope sender, recipient) of one message


# A regex finds none faster than bytes.find does on text with a line break every 76 bytes.
_LINE_STARTS_WITH_DOT = re.compile(rb"\n\.")


def dot_stuffed(data: bytes) -> bytes:
    """SMTP transparency (RFC 5321 4.5.2): a line that starts with "." gets another one, and
    the data ends with CRLF so the terminating "." is on a line of its own."""
    data = data if data.endswith(b"\r\n") else data + b"\r\n"
    if not data.startswith(b".") and _LINE_STARTS_WITH_DOT.search(data) is None:
        return data  # our own messages: their encoder writes a leading "." as =2E
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


def tls_context(settings: SMTPSettings) -> ssl.SSLContext:
    """A verifying context: smtplib's own default would accept any certificate."""
    cafile = str(settings.ca_file) if settings.ca_file else None
    return ssl.create_default_context(cafile=cafile)


class SMTPConnection:
    """One SMTP session, reused for many messages; reconnects are the caller's choice.

    Opening the session must end within `session_deadline` seconds and each transaction
    (MAIL to the reply after the final ".") within `transaction_deadline`, however the server
    paces its replies; `smtp.timeout` still bounds each single read.
    """

    def __init__(
        self,
        settings: SMTPSettings,
        *,
        session_deadline: float = 120.0,
        transaction_deadline: float = 60.0,
    ) -> None:
        if (
            settings.username
            and settings.security == SMTPSecurity.NONE
            and settings.host not in _LOOPBACK
        ):
            raise ConfigError("smtp: refusing to send a password without TLS; set smtp.security")
        self.settings = settings
        self.session_deadline, self.transaction_deadline = session_deadline, transaction_deadline
        self._smtp: BoundedSMTP | BoundedSMTPSSL | None = None
        self._opening: BoundedSMTP | BoundedSMTPSSL | None = None  # for abort() during open()
        self._aborted = ""
        self._stage = Stage.CONNECT
        self.sent_on_connection = 0
        self._opened: Envelope | None = None  # DATA is open for this envelope, sent ahead
        self._early: tuple[Envelope, Reply] | None = None  # a refusal met ahead of its send

    def __enter__(self) -> SMTPConnection:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        """Whether a session is up (it may still be dropped by the server at any time)."""
        return self._smtp is not None

    def open(self) -> None:
        """Connect, secure, greet and authenticate, or raise TransportError saying why."""
        s = self.settings
        where = f"{s.host}:{s.port}"
        # Empty only when built without Settings.relay(): then the host's own name.
        helo = s.local_hostname or None
        smtp: BoundedSMTP | BoundedSMTPSSL
        if s.security == SMTPSecurity.TLS:
            smtp = BoundedSMTPSSL(local_hostname=helo, timeout=s.timeout, context=tls_context(s))
        else:
            smtp = BoundedSMTP(local_hostname=helo, timeout=s.timeout)
        self._opening = smtp
        smtp.deadline.start(
            self.session_deadline,
            f"SMTP session set-up took over {self.session_deadline:g} s"
            " (delivery.session_deadline)",
        )
        try:
            smtp.connect(s.host, s.port)
            smtp.ehlo()
            if s.security == SMTPSecurity.STARTTLS:
                if not smtp.has_extn("starttls"):
                    smtp.close()
                    raise TransportError(
                        f"SMTP server {where} does not offer STARTTLS, which smtp.security requires"
                    )
                smtp.starttls(context=tls_context(s))
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, s.password.get_secret_value())
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportError(
                f"SMTP server {where} refused the login: {exc.smtp_code} {exc.smtp_error!r}"
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise TransportError(self._aborted or _why_no_session(exc, s)) from exc
        finally:
            self._opening = None
        self._smtp = smtp
        self._aborted = ""
        self.sent_on_connection = 0
        self._opened = self._early = None

    def close(self) -> None:
        """Say QUIT if the session is still up; never raises."""
        if self._opened is not None:
            self._drop()
            return
        self._early = None
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        smtp.deadline.start(min(self.settings.timeout, _QUIT_WAIT), "QUIT")
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def send(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        *,
        then: Envelope | None = None,
        transparent: bool = False,
    ) -> Reply:
        """One MAIL/RCPT/DATA transaction for CRLF-delimited `data`, dot-stuffed on the way,
        unless it is `transparent`: no line of it starts with "." (our messages, as built).

        With `then`, the envelope of the message this session sends next, and a server that
        pipelines, that envelope goes in the same write as this message's final "." (RFC 2920
        3.1 lets the next MAIL share the group that ends a message): one round trip a message
        instead of two. Its replies are read here; the send() of that message then finds its
        envelope open, or returns the refusal it met, without a word on the wire.
        """
        smtp = self._smtp
        if smtp is None:
            raise TransportError("send() on a closed SMTP connection")
        envelope = (sender, recipient)
        early, self._early = self._early, None
        if early is not None and early[0] == envelope:
            return early[1]
        opened, self._opened = self._opened, None
        if opened is not None and opened != envelope:
            # DATA is open for another message: anything sent now would become its content.
            self._drop()
            raise TransportError("send() for another message than the one opened ahead")
        self._stage = Stage.MAIL
        smtp.deadline.start(
            self.transaction_deadline,
            f"SMTP transaction took over {self.transaction_deadline:g} s"
            " (delivery.transaction_deadline)",
        )
        ahead = self._ahead(smtp, then)
        try:
            if opened is None:
                if self._pipelines(smtp, sender, recipient):
                    smtp.send(_envelope(sender, recipient))
                    refused = self._envelope_replies(smtp)
                else:
                    refused = self._envelope_in_turn(smtp, sender, recipient)
                if refused is not None:
                    return refused
            self._stage = Stage.DOT
            body = data if transparent and data.endswith(b"\r\n") else dot_stuffed(data)
            smtp.send(body + b".\r\n" + ahead)
            code, text = smtp.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            why = self._aborted or str(exc) or exc.__class__.__name__
            return Reply(0, why, self._stage)
        if code == 421:
            self.close()
        elif 200 <= code < 300:
            self.sent_on_connection += 1
        reply = Reply(code, text.decode("utf-8", "replace"), Stage.DOT)
        if ahead and then is not None and self._smtp is not None:
            self._read_ahead(self._smtp, then)
        return reply

    def _pipelines(self, smtp: smtplib.SMTP, sender: str, recipient: str) -> bool:
        """Whether this envelope may go in one write: the server pipelines (RFC 2920) and the
        addresses, validated as plain ASCII addr-specs, are checked once more here because
        they go straight onto the wire."""
        return bool(
            smtp.does_esmtp
            and smtp.has_extn("pipelining")
            and _PLAIN_ADDRESS.fullmatch(sender)
            and _PLAIN_ADDRESS.fullmatch(recipient)
        )

    def _ahead(self, smtp: smtplib.SMTP, then: Envelope | None) -> bytes:
        """The next message's envelope to send with this one's end, if it may go ahead."""
        if then is None or not self._pipelines(smtp, *then):
            return b""
        return _envelope(*then)

    def _read_ahead(self, smtp: smtplib.SMTP, then: Envelope) -> None:
        """Read the replies to the envelope sent ahead. Accepted: DATA is open for it. Refused:
        the refusal waits for its send(). No reply, or the server closing: the session ends,
        and the message, of which nothing but its envelope was sent, goes afresh on the next
        session."""
        try:
            refused = self._envelope_replies(smtp)
        except (smtplib.SMTPException, OSError):
            self.close()
            return
        if refused is None:
            self._opened = then
        elif refused.code != 421:  # a closing server's 421 is no verdict on the message
            self._early = (then, refused)

    def _drop(self) -> None:
        """End the session without QUIT: with DATA open, QUIT would be taken as content; cut
        off before its final ".", the unfinished message is discarded by the server."""
        smtp, self._smtp = self._smtp, None
        self._opened = self._early = None
        if smtp is not None:
            smtp.close()

    def abort(self, reason: str) -> None:
        """Cut the session from another thread: a read or write in progress fails at once and
        its transaction ends with `reason` (a bounded stop)."""
        smtp = self._smtp or self._opening
        sock = smtp.sock if smtp is not None else None
        self._aborted = reason
        if sock is None:
            return
        with contextlib.suppress(OSError):  # already gone: the sender sees that on its own
            sock.shutdown(socket.SHUT_RDWR)

    def _envelope_in_turn(self, smtp: smtplib.SMTP, sender: str, recipient: str) -> Reply | None:
        """MAIL, RCPT and DATA one after the other; a Reply if the server refused one."""
        code, text = smtp.mail(sender)
        if code != 250:
            return self._reset(code, text, Stage.MAIL)
        self._stage = Stage.RCPT
        code, text = smtp.rcpt(recipient)
        if code not in (250, 251):
            return self._reset(code, text, Stage.RCPT)
        self._stage = Stage.DATA
        smtp.putcmd("data")
        code, text = smtp.getreply()
        return None if code == 354 else self._reset(code, text, Stage.DATA)

    def _envelope_replies(self, smtp: smtplib.SMTP) -> Reply | None:
        """The replies to MAIL, RCPT and DATA sent in one write, in order; a Reply if the
        server refused one."""
        replies: list[tuple[int, bytes]] = []
        for stage in (Stage.MAIL, Stage.RCPT, Stage.DATA):
            self._stage = stage
            code, text = smtp.getreply()
            if code == 421:
                # The server says why and hangs up: the replies after this one never come.
                return self._reset(code, text, stage)
            replies.append((code, text))
        (mail_code, mail_text), (rcpt_code, rcpt_text), (data_code, data_text) = replies
        if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
            # A server that opened DATA despite a refusal: end the empty message, then reset.
            smtp.send(b".\r\n")
            smtp.getreply()
        if mail_code != 250:
            return self._reset(mail_code, mail_text, Stage.MAIL)
        if rcpt_code not in (250, 251):
            return self._reset(rcpt_code, rcpt_text, Stage.RCPT)
        return None if data_code == 354 else self._reset(data_code, data_text, Stage.DATA)

    def _reset(self, code: int, text: bytes, stage: Stage) -> Reply:
        reply = Reply(code, text.decode("utf-8", "replace"), stage)
        if code == 421 or self._smtp is None:
            self.close()
            return reply
        try:
            self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self.close()
        return reply


def _envelope(sender: str, recipient: str) -> bytes:
    """MAIL, RCPT and DATA as one pipelined group (RFC 2920): DATA ends it."""
    return f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode("ascii")


def _why_no_session(exc: smtplib.SMTPException | OSError, s: SMTPSettings) -> str:
    """One accurate line on why a session could not be opened: refused, silent, unknown host,
    TLS, or the server's own refusal."""
    where = f"{s.host}:{s.port}"
    # smtplib turns a read that timed out into "Connection unexpectedly closed".
    cause = exc.__context__ if isinstance(exc, smtplib.SMTPServerDisconnected) else exc
    if isinstance(cause, DeadlineExceeded):
        return f"SMTP server {where}: {cause}"
    if isinstance(cause, TimeoutError):
        return f"SMTP server {where} did not answer within {s.timeout:g} s (smtp.timeout)"
    if isinstance(cause, ConnectionRefusedError):
        return f"cannot reach SMTP server {where}: connection refused (is it running there?)"
    if isinstance(cause, socket.gaierror):
        return f"cannot reach SMTP server {where}: unknown host ({cause.strerror})"
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS with SMTP server {where} failed: {cause.reason} ({cause.verify_message})"
    if isinstance(cause, ssl.SSLError):
        return f"TLS with SMTP server {where} failed: {cause.reason or cause}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"SMTP server {where} closed the connection before the session began"
    if isinstance(exc, smtplib.SMTPException):
        return f"SMTP server {where} refused the session: {exc}"
    return f"cannot reach SMTP server {where}: {exc.strerror or exc}"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (aiosmtpd's Controller cannot take port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
