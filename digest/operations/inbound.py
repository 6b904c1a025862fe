"""Inbound mail to the unsubscribe address: the `mailto:` half of List-Unsubscribe.

Each digest offers `mailto:unsubscribe+<list>.<token>@<mail_domain>` beside the https link
(EMAIL.md #75). A mail to that address, whatever it says, unsubscribes the reader the token
names from that list. `unsubscribe_hook` plugs this into the capture server (or any SMTP
front end that hands over the envelope); `unsubscribe_by_mail` takes a raw message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email import message_from_bytes
from email.utils import getaddresses

from digest.config import Settings
from digest.errors import DigestError
from digest.mail.capture import Captured
from digest.operations.readers import Subscriptions
from digest.store import Store
from digest.store.schema import make_engine

log = logging.getLogger("digest.operations.inbound")
# Where the original recipient may be found when no envelope comes with the message.
_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc")


def recipients_of(raw: bytes, envelope: Sequence[str] = ()) -> list[str]:
    """The addresses a message was for: the envelope's if known, else its headers'."""
    if envelope:
        return list(envelope)
    message = message_from_bytes(raw)
    values = [str(v) for name in _RECIPIENT_HEADERS for v in message.get_all(name, [])]
    return [address for _, address in getaddresses(values) if address]


def unsubscribe_by_mail(
    subscriptions: Subscriptions,
    raw: bytes,
    *,
    envelope: Sequence[str] = (),
    now: datetime,
) -> int:
    """Unsubscribe for every genuine unsubscribe address the message went to; how many."""
    return sum(
        subscriptions.unsubscribe_address(address, now=now)
        for address in recipients_of(raw, envelope)
    )


def unsubscribe_hook(
    settings: Settings, *, clock: Callable[[], datetime] | None = None
) -> Callable[[Captured], None]:
    """An `on_message` callback for CaptureServer that acts on unsubscribe mails."""
    subscriptions = Subscriptions(settings, Store(make_engine(settings.database_url)))

    def on_message(item: Captured) -> None:
        if not any(r.lower().startswith("unsubscribe+") for r in item.recipients):
            return
        try:
            done = unsubscribe_by_mail(
                subscriptions,
                item.path.read_bytes(),
                envelope=item.recipients,
                now=(clock or _utc_now)(),
            )
        except (DigestError, OSError) as exc:
            log.warning("unsubscribe mail %s not processed: %s", item.path.name, exc)
            return
        log.info("unsubscribe mail %s: %d subscription(s) ended", item.path.name, done)

    return on_message


def _utc_now() -> datetime:
    return datetime.now(UTC)
