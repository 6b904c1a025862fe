"""How mail leaves: the SMTP relay, the engine's pace and retries, DKIM, the capture server."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from digest.config.checks import Section, address
from digest.models import Oversize, SMTPSecurity


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SMTPSettings(Section):
    """Where and how messages are handed over."""

    host: str = "127.0.0.1"
    port: int = Field(default=8025, ge=1, le=65535)
    security: SMTPSecurity = SMTPSecurity.NONE
    username: str = ""
    password: SecretStr = SecretStr("")
    timeout: float = Field(default=30.0, gt=0)
    # The EHLO name; empty: site.mail_domain (see Settings.relay), which should match the
    # sending IP's PTR record. Never "localhost": receivers count that against a sender.
    local_hostname: str = ""
    ca_file: Path | None = None

    @property
    def is_local_test_server(self) -> bool:
        """A server on this machine on an unprivileged port: the capture server, aiosmtpd,
        smtp-sink. Mail handed to it goes nowhere else; a relay on 25, 465 or 587 (a local
        Postfix included) may pass it on to real inboxes."""
        return self.port >= 1024 and _is_loopback(self.host)


class DeliverySettings(Section):
    """How fast and how carefully the engine sends."""

    connections: int = Field(default=4, ge=1, le=64)
    messages_per_connection: int = Field(default=100, ge=1)
    seconds_per_connection: float = Field(default=300.0, gt=0)
    rate_per_second: float = Field(default=0.0, ge=0)
    hourly_cap: int = Field(default=0, ge=0)
    batch_size: int = Field(default=500, ge=1)
    commit_group: int = Field(default=50, ge=1)
    lease_seconds: float = Field(default=600.0, gt=0)
    pause_after_failures: int = Field(default=50, ge=1)
    retry_first_seconds: float = Field(default=300.0, gt=0)
    retry_max_seconds: float = Field(default=4000.0, gt=0)
    lifetime_hours: float = Field(default=24.0, gt=0)
    transaction_deadline: float = Field(default=60.0, gt=0)
    session_deadline: float = Field(default=120.0, gt=0)
    breaker_after: int = Field(default=5, ge=1)
    stop_grace: float = Field(default=10.0, ge=0)
    # Gmail clips a message above about 102 KB (1 KB = 1,000 bytes here).
    max_message_kb: int = Field(default=100, ge=1)
    oversize: Oversize = Oversize.WARN


class CaptureSettings(Section):
    """The built-in capture SMTP server that saves every message as an .eml file."""

    host: str = "127.0.0.1"
    port: int = Field(default=8025, ge=1, le=65535)
    directory: Path = Path("var/mail")


class DkimSettings(Section):
    """DKIM signing (RFC 6376): on when `private_key` is set; then domain and selector must be."""

    domain: str = ""
    selector: str = ""
    private_key: Path | None = None
    # A second, ed25519-sha256 signature (RFC 8463) with a key published under its own selector.
    ed25519_selector: str = ""
    ed25519_private_key: Path | None = None

    @model_validator(mode="after")
    def _complete(self) -> DkimSettings:
        if self.private_key is not None and not (self.domain and self.selector):
            raise ValueError("domain and selector must be set when private_key is")
        if self.ed25519_private_key is not None and not (
            self.private_key is not None and self.ed25519_selector
        ):
            # Receivers that do not know Ed25519 (most, in 2026) need the RSA signature.
            raise ValueError(
                "ed25519_private_key needs ed25519_selector, and private_key (RSA) beside it"
            )
        return self


class BouncesSettings(Section):
    """What `digest bounces` does with soft bounces (hard ones suppress at once)."""

    soft_bounce_limit: int = Field(default=3, ge=1, le=100)
    # The envelope sender (Return-Path) of every digest, where receivers send bounces, e.g. on
    # a bounce subdomain; empty: each list's From address.
    address: str = ""
    # VERP: each message's envelope sender becomes address's local+<token>@domain, the token a
    # signed name of the edition and subscriber, so a bounce is attributed by where it arrives.
    verp: bool = False

    @field_validator("address")
    @classmethod
    def _plain_address(cls, value: str) -> str:
        return address(value) if value else value

    @model_validator(mode="after")
    def _verp_needs_an_address(self) -> BouncesSettings:
        if self.verp and not self.address:
            raise ValueError("verp = true needs [bounces] address, the mailbox bounces reach")
        # "+" and a 32-character token go after the local part, which may have 64 octets.
        if self.verp and len(self.address.rpartition("@")[0]) > 64 - 33:
            raise ValueError("address's local part is too long for VERP (31 characters at most)")
        return self


def signing_state(dkim: DkimSettings) -> str:
    """Whether and how messages are DKIM-signed, as `digest status` and `digest config` say it."""
    if dkim.private_key is None:
        return "DKIM signing: off (Gmail and Yahoo require it for bulk mail: digest dkim keygen)"
    state = f"DKIM signing: on (d={dkim.domain}, s={dkim.selector}, key {dkim.private_key}"
    if dkim.ed25519_private_key is not None:
        state += f"; ed25519 s={dkim.ed25519_selector}, key {dkim.ed25519_private_key}"
    return state + ")"
