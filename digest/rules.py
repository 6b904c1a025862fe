"""The two decisions every path must make the same way, as pure functions.

A subscription's next status (imports, sign-ups, confirmations, unsubscribes and bounces all
change it, so one function says what each may do) and what a bounce does to a subscriber.
The store loads the facts and writes the result; these functions only decide.
"""

from __future__ import annotations

from enum import StrEnum

from digest.models import SubscriptionStatus

SUPPRESSED = (
    SubscriptionStatus.UNSUBSCRIBED,
    SubscriptionStatus.BOUNCED,
    SubscriptionStatus.COMPLAINED,
)


class StatusChange(StrEnum):
    """Who asks for a subscription's status to change, which decides what they may do."""

    # The publisher: seeds, imports, `digest subscribers add/remove`, a sign-up request. A
    # suppression stays unless the new status is itself one, and a complaint stays whatever
    # it is; an active reader is never sent back to pending (they have confirmed already).
    LOAD = "load"
    # The reader's own confirmed choice (a confirmation link, the preferences page): may lift
    # a suppression, because it is the reader who asks.
    READER = "reader"
    UNSUBSCRIBE = "unsubscribe"  # active or pending stop at once; nothing else changes
    BOUNCE = "bounce"  # an active address found dead; nothing else changes
    # The reader reported our mail as spam: every subscription they have stops, whatever it
    # was, and is marked so; only their own confirmed choice (READER) lifts it.
    COMPLAINT = "complaint"


def next_status(
    current: SubscriptionStatus | None, wanted: SubscriptionStatus, *, by: StatusChange
) -> SubscriptionStatus | None:
    """The status after `by` asks for `wanted`; None while there is no subscription.

    Unsubscribes, bounces and complaints never create a subscription; the others do.
    """
    if by is StatusChange.COMPLAINT:
        return None if current is None else SubscriptionStatus.COMPLAINED
    if by is StatusChange.UNSUBSCRIBE:
        active = current in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING)
        return SubscriptionStatus.UNSUBSCRIBED if active else current
    if by is StatusChange.BOUNCE:
        return SubscriptionStatus.BOUNCED if current == SubscriptionStatus.ACTIVE else current
    if by is StatusChange.READER or current is None:
        return wanted
    if current == SubscriptionStatus.COMPLAINED:
        return current  # no import or command of the publisher's overrules a complaint
    if current in SUPPRESSED and wanted not in SUPPRESSED:
        return current
    if current == SubscriptionStatus.ACTIVE and wanted == SubscriptionStatus.PENDING:
        return current
    return wanted


class BounceAction(StrEnum):
    """What a bounce report asks for a known subscriber (from its kind: hard, soft, policy)."""

    SUPPRESS = "suppress"  # the mailbox is dead: bounced on every list
    COUNT = "count"  # a soft bounce: count it; the limit-th in a row suppresses
    NOTE = "note"  # only remember it (policy bounces are our problem, not the reader's)


class BounceEffect(StrEnum):
    """What applying a bounce did."""

    SEEN = "already processed"
    UNKNOWN = "unknown recipient"
    SUPPRESSED = "suppressed"
    COUNTED = "counted"
    NOTED = "noted"


def bounce_outcome(
    action: BounceAction, *, soft_bounces: int, got_through: bool, soft_limit: int
) -> tuple[BounceEffect, int]:
    """What a bounce does, and the soft bounces in a row after it.

    `soft_bounces` is the count so far (0: none counted yet); `got_through` says a message
    sent between the last counted soft bounce and this one did not bounce, so the run of
    soft bounces is broken and this one starts it again.
    """
    if action is BounceAction.NOTE:
        return BounceEffect.NOTED, soft_bounces
    if action is BounceAction.COUNT:
        count = 1 if got_through or not soft_bounces else soft_bounces + 1
        return (BounceEffect.COUNTED if count < soft_limit else BounceEffect.SUPPRESSED), count
    return BounceEffect.SUPPRESSED, soft_bounces
