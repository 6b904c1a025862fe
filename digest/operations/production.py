"""What mail for real inboxes demands that the demo does not: the install's own secret and
addresses, never the shipped examples, and a DKIM signature (Gmail and Yahoo require one for
bulk mail). A local test server (the capture server, aiosmtpd, smtp-sink) is exempt."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from digest.config import Settings
from digest.config.secrets import write_new_secret
from digest.config.site import PLACEHOLDER_SECRET
from digest.errors import ConfigError

if TYPE_CHECKING:
    from digest.mail.dkim import DkimSigner


def refuse_shipped_examples(settings: Settings) -> None:
    """Raise ConfigError, saying what to set, before a relay that reaches inboxes gets mail
    with the shipped secret or example addresses."""
    smtp = settings.smtp
    if smtp.is_local_test_server:
        return
    placeholders = settings.site.placeholders()
    if placeholders:
        raise ConfigError(
            f"refusing to send through {smtp.host}:{smtp.port}: " + "; ".join(placeholders)
        )


def unsigned_warning(settings: Settings, *, signed: bool) -> str | None:
    """The one warning for unsigned mail to a relay that reaches inboxes, else None."""
    smtp = settings.smtp
    if signed or smtp.is_local_test_server:
        return None
    return (
        f"sending through {smtp.host}:{smtp.port} without DKIM: Gmail and Yahoo require DKIM "
        f"for bulk mail: digest dkim keygen --selector S --domain {settings.site.mail_domain} "
        "--out DIR, then set [dkim]"
    )


def ensure_secret(settings: Settings) -> Path | None:
    """With no unsubscribe secret configured, write a random one to the secrets file (mode
    0600) and return its path; `settings` keep the old value until loaded again."""
    if settings.site.unsubscribe_secret.get_secret_value() not in ("", PLACEHOLDER_SECRET):
        return None
    write_new_secret(settings.secrets_file)
    return settings.secrets_file


def dkim_signer(settings: Settings) -> DkimSigner | None:
    """The DKIM signer (its key read now, so a bad key fails at start), or None when off."""
    if settings.dkim.private_key is None:
        return None
    from digest.mail.dkim import build_signer

    return build_signer(settings.dkim)
