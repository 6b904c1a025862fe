"""A test copy: the edition as it stands, sent to one address outside the ledger."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from digest.errors import NotFoundError
from digest.intake.people import normalise_address
from digest.models import Subscriber
from digest.operations.editions import message_template, recipient

if TYPE_CHECKING:
    from digest.mail.transport import Reply
    from digest.operations.publisher import Publisher


def send_test(publisher: Publisher, list_slug: str, *, to: str, now: datetime) -> Reply:
    """Send the edition as it stands to one address; the ledger is not touched."""
    address = normalise_address(to)
    mailing_list = publisher.settings.list(list_slug)
    found = publisher.edition_or_draft(mailing_list, now)
    day = found.edition_date
    try:
        who = publisher.store.subscriber_by_email(address)
    except NotFoundError:
        who = Subscriber(id=0, email=address)
    template = message_template(
        publisher.settings.site,
        mailing_list,
        edition_day=day,
        subject=f"[Test] {found.subject}",
        html=found.html,
        text=found.text,
        nonce=found.slot_nonce,
    )
    personal = recipient(publisher.settings.site, mailing_list, day, who)
    test_id = f"<test.{uuid.uuid4().hex}@{publisher.settings.site.mail_domain}>"
    data = template.personalise(
        replace(personal, message_id=test_id), date=datetime.now(now.tzinfo)
    )
    data = publisher.signer.sign(data) if publisher.signer else data
    connection = publisher.connect()
    connection.open()
    try:
        return connection.send(publisher.settings.envelope_sender(mailing_list), address, data)
    finally:
        connection.close()
