"""ARF complaints as `digest bounces` applies them: whom a report names, and what it did.

A complaint suppresses its subscriber on every list (status "complained"): a reader who
reports one digest as spam wants none (EMAIL.md #8, #18). It is attributed only by what we
signed, in this order: the VERP token in Original-Mail-From or the original's Return-Path, the
sealed Message-ID, the List-Unsubscribe token. A redacted recipient names nobody, and an
unredacted one is not trusted either: anyone can mail us a report, but nobody can forge our
signatures. A report that names nobody is recorded and printed, and changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

from digest.edition.tokens import read_message_id, read_unsubscribe_token
from digest.intake.complaints import Complaint
from digest.store import AppliedComplaint, Attribution, ComplaintEffect, ComplaintEvent, NamedBy

# The two forms of our List-Unsubscribe URIs (digest.edition.message.ListIdentity).
_SLUG = r"([a-z0-9][a-z0-9-]{0,62})"
_TOKEN = r"([A-Za-z0-9_-]{20,})"
_HTTPS_LINK = re.compile(rf"^https://[^/\s]+(?:/[^\s]*)?/u/{_SLUG}/{_TOKEN}$")
_MAILTO_LINK = re.compile(rf"^mailto:unsubscribe\+{_SLUG}\.{_TOKEN}@", re.IGNORECASE)


def _unsubscribe_claims(links: Iterable[str], *, secrets: Mapping[int, bytes]) -> list[Attribution]:
    found = []
    for link in links:
        match = _HTTPS_LINK.match(link) or _MAILTO_LINK.match(link)
        if match is None:
            continue
        slug = match[1].lower()
        subscriber_id = read_unsubscribe_token(match[2], list_slug=slug, secrets=dict(secrets))
        if subscriber_id is not None:
            found.append(Attribution(NamedBy.UNSUBSCRIBE_TOKEN, subscriber_id, list_slug=slug))
    return found


def complaint_event(
    source: str,
    complaint: Complaint,
    *,
    verp: tuple[int, int] | None,
    secrets: Mapping[int, bytes],
) -> ComplaintEvent:
    """The report as the store applies it. `verp` is the (edition, subscriber) a genuine token
    in `complaint.senders` named; the key is the original's identity when one is known, so
    the same complaint forwarded twice counts once."""
    claims: list[Attribution] = []
    if verp is not None:
        claims.append(Attribution(NamedBy.VERP, verp[1], edition_id=verp[0]))
    origin = read_message_id(complaint.original_message_id, secrets=secrets.values())
    if origin is not None:
        claims.append(
            Attribution(
                NamedBy.MESSAGE_ID,
                origin[2],
                message_id=complaint.original_message_id,
                list_slug=origin[0],
                edition_date=origin[1],
            )
        )
    claims.extend(_unsubscribe_claims(complaint.unsubscribe_links, secrets=secrets))
    basis = (
        (
            "claim",
            claims[0].named_by,
            claims[0].subscriber_id,
            claims[0].edition_id,
            complaint.original_message_id,
            complaint.feedback_type,
        )
        if claims
        else ("src", source)
    )
    return ComplaintEvent(
        key=hashlib.sha256("\x00".join(map(str, basis)).encode()).hexdigest(),
        source=source,
        feedback_type=complaint.feedback_type,
        user_agent=complaint.user_agent,
        reported_domain=complaint.reported_domain,
        arrived_at=complaint.arrival_date,
        suppress=complaint.is_complaint,
        claims=tuple(claims),
    )


def complaint_line(complaint: Complaint, applied: AppliedComplaint, *, where: str) -> str:
    """The line `digest bounces` prints for one report."""
    what = f"complaint {complaint.feedback_type}"
    if complaint.user_agent:
        what += f" ({complaint.user_agent})"
    edition = ""
    if applied.list_slug:
        day = f" {applied.edition_date:%Y-%m-%d}" if applied.edition_date else ""
        edition = f" ({applied.list_slug}{day})"
    if applied.effect is ComplaintEffect.UNATTRIBUTED:
        shown = complaint.recipient or "a redacted recipient"
        return (
            f"{what} about {shown}: nothing we signed names a subscriber; reported, "
            f"not applied [{where}]"
        )
    who = f"{applied.email}{edition} by {applied.named_by}"
    if applied.effect is ComplaintEffect.SUPPRESSED:
        return f"{what} from {who}: complained, suppressed on every list"
    return f"{what} from {who}: not a complaint, nothing changed"
