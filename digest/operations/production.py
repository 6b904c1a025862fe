"""What mail for real inboxes demands that the demo does not: the install's own secret and
addresses, never the shipped examples, and a DKIM signature (Gmail and Yahoo require one for
bulk mail) on the From address's own organisational domain, so that DMARC passes on it (EMAIL.md
#1). A local test server (the capture server, aiosmtpd, smtp-sink) is exempt."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from digest.config import Settings
from digest.config.secrets import write_new_secret
from digest.config.site import PLACEHOLDER_SECRET, is_example_domain
from digest.errors import ConfigError

if TYPE_CHECKING:
    from digest.mail.dkim import DkimSigner


def refuse_shipped_examples(settings: Settings) -> None:
    """Raise ConfigError, saying what to set, before a relay that reaches inboxes gets mail
    with the shipped secret or example addresses."""
    smtp = settings.smtp
    if smtp.is_local_test_server:
        return
    placeholders = settings.site.placeholders() + _example_senders(settings)
    if placeholders:
        raise ConfigError(
            f"refusing to send through {smtp.host}:{smtp.port}: " + "; ".join(placeholders)
        )


_SECOND_LEVELS = frozenset(("ac", "co", "com", "edu", "gov", "net", "org"))


def warnings(settings: Settings, *, signed: bool) -> list[str]:
    """What a send to this relay should warn about: unsigned mail, or a misaligned signature."""
    found = (unsigned_warning(settings, signed=signed), misaligned_warning(settings, signed=signed))
    return [warning for warning in found if warning]


def _example_senders(settings: Settings) -> list[str]:
    """The addresses mail goes out from that are still on an example domain: receivers refuse
    mail from a domain with no DNS, and nobody can reply to it."""
    senders = [
        (f"lists.{item.slug}.{key}", value)
        for item in settings.lists
        for key, value in (("from_address", item.from_address), ("reply_to", item.reply_to))
    ]
    senders += [
        ("bounces.address", settings.bounces.address),
        ("web.confirmation_from", settings.web.confirmation_from),
    ]
    examples = [
        f"{name} {value}"
        for name, value in senders
        if value and is_example_domain(value.rpartition("@")[2])
    ]
    return [f"example sender addresses: {', '.join(examples)}: set yours"] if examples else []


def organisational_domain(name: str) -> str:
    """The registered domain a name belongs to, as DMARC's relaxed alignment compares them
    (RFC 7489 3.2): the last two labels, or three under a two-letter country code's common
    second level (co.uk, com.au). An approximation of the Public Suffix List that holds for the
    domains publishers send from."""
    labels = name.lower().rstrip(".").split(".")
    under_country = len(labels) > 2 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVELS
    return ".".join(labels[-3:] if under_country else labels[-2:])


def misaligned_warning(settings: Settings, *, signed: bool) -> str | None:
    """The one warning when DKIM signs for a domain other than a list's From domain: DMARC
    then passes only if SPF aligns, and Gmail and Yahoo want it to pass (EMAIL.md #1)."""
    smtp = settings.smtp
    if not signed or smtp.is_local_test_server:
        return None
    signing = organisational_domain(settings.dkim.domain)
    apart = sorted(
        {
            item.from_address
            for item in settings.lists
            if organisational_domain(item.from_address.rpartition("@")[2]) != signing
        }
    )
    if not apart:
        return None
    return (
        f"DKIM signs for {settings.dkim.domain}, which does not align with the From address "
        f"{', '.join(apart)}: DMARC then passes only through SPF; set [dkim] domain to the "
        "From address's domain (and publish its key there)"
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
