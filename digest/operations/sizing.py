"""How big one copy of an edition is, held against the size where Gmail clips a message.

Gmail shows about the first 102 KB of a message and hides the rest behind "View entire
message", the footer with the unsubscribe link included. One copy is measured as it would be
sent (personalised for a stand-in reader, DKIM-signed when signing is on); subscribers' copies
differ from it only by their name and tokens, a few dozen bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from digest.config import DeliverySettings, ListSettings, SiteSettings
from digest.errors import RenderError
from digest.models import Edition, Oversize, Subscriber
from digest.operations.editions import Draft, message_template, recipient

KB = 1000


@dataclass(frozen=True, slots=True)
class MessageSize:
    """The size of one copy and the configured limit."""

    octets: int
    limit_kb: int

    @property
    def kb(self) -> int:
        """Whole KB, rounded up, so a copy over the limit never shows as at it."""
        return -(-self.octets // KB)

    @property
    def over(self) -> bool:
        """Above [delivery] max_message_kb."""
        return self.octets > self.limit_kb * KB

    def __str__(self) -> str:
        return f"message size {self.kb} KB"

    def warning(self) -> str:
        """What is wrong with an oversize copy, in one line."""
        return (
            f"{self} is over [delivery] max_message_kb = {self.limit_kb} KB: Gmail clips "
            "messages above about 102 KB and hides the rest, the unsubscribe link included"
        )


def sample_copy(
    site: SiteSettings, mailing_list: ListSettings, found: Edition | Draft, *, now: datetime
) -> bytes:
    """One copy of the whole edition for a stand-in reader, unsigned."""
    template = message_template(
        site,
        mailing_list,
        edition_day=found.edition_date,
        subject=found.subject,
        html=found.html,
        text=found.text,
        nonce=found.slot_nonce,
    )
    reader = Subscriber(id=0, email=f"reader@{site.mail_domain}")
    return template.personalise(recipient(site, mailing_list, found.edition_date, reader), date=now)


def checked_size(data: bytes, delivery: DeliverySettings, *, sending: bool) -> MessageSize:
    """The copy's size; over the limit with `oversize = "refuse"`, a send is refused here."""
    size = MessageSize(len(data), delivery.max_message_kb)
    if sending and size.over and delivery.oversize == Oversize.REFUSE:
        raise RenderError(
            f"{size.warning()}; nothing was queued (shorten the edition, raise max_message_kb, "
            'or set [delivery] oversize = "warn")'
        )
    return size
