"""The pure decisions: a subscription's next status, and what a bounce does."""

from __future__ import annotations

import pytest

from digest.models import SubscriptionStatus
from digest.rules import (
    BounceAction,
    BounceEffect,
    StatusChange,
    bounce_outcome,
    next_status,
)

ACTIVE = SubscriptionStatus.ACTIVE
PENDING = SubscriptionStatus.PENDING
UNSUBSCRIBED = SubscriptionStatus.UNSUBSCRIBED
BOUNCED = SubscriptionStatus.BOUNCED
COMPLAINED = SubscriptionStatus.COMPLAINED
LOAD, READER = StatusChange.LOAD, StatusChange.READER
UNSUBSCRIBE, BOUNCE = StatusChange.UNSUBSCRIBE, StatusChange.BOUNCE
COMPLAINT = StatusChange.COMPLAINT


@pytest.mark.parametrize(
    ("current", "wanted", "by", "after"),
    [
        # The publisher (imports, seeds, `subscribers add/remove`, sign-up requests).
        (None, ACTIVE, LOAD, ACTIVE),
        (None, PENDING, LOAD, PENDING),
        (None, UNSUBSCRIBED, LOAD, UNSUBSCRIBED),  # a removal remembers the address
        (PENDING, ACTIVE, LOAD, ACTIVE),
        (ACTIVE, PENDING, LOAD, ACTIVE),  # confirmed already: never back to pending
        (ACTIVE, UNSUBSCRIBED, LOAD, UNSUBSCRIBED),
        (UNSUBSCRIBED, ACTIVE, LOAD, UNSUBSCRIBED),  # a suppression stays
        (BOUNCED, ACTIVE, LOAD, BOUNCED),
        (BOUNCED, PENDING, LOAD, BOUNCED),
        (UNSUBSCRIBED, BOUNCED, LOAD, BOUNCED),  # one suppression for another
        (BOUNCED, UNSUBSCRIBED, LOAD, UNSUBSCRIBED),
        # The reader's own confirmed choice may lift a suppression.
        (UNSUBSCRIBED, ACTIVE, READER, ACTIVE),
        (BOUNCED, ACTIVE, READER, ACTIVE),
        (PENDING, ACTIVE, READER, ACTIVE),
        (None, ACTIVE, READER, ACTIVE),
        # Unsubscribes stop active and pending, create nothing, change nothing else.
        (ACTIVE, UNSUBSCRIBED, UNSUBSCRIBE, UNSUBSCRIBED),
        (PENDING, UNSUBSCRIBED, UNSUBSCRIBE, UNSUBSCRIBED),
        (BOUNCED, UNSUBSCRIBED, UNSUBSCRIBE, BOUNCED),
        (UNSUBSCRIBED, UNSUBSCRIBED, UNSUBSCRIBE, UNSUBSCRIBED),
        (None, UNSUBSCRIBED, UNSUBSCRIBE, None),
        # Bounces stop active addresses only.
        (ACTIVE, BOUNCED, BOUNCE, BOUNCED),
        (PENDING, BOUNCED, BOUNCE, PENDING),
        (UNSUBSCRIBED, BOUNCED, BOUNCE, UNSUBSCRIBED),
        (None, BOUNCED, BOUNCE, None),
        # A complaint stops every subscription, whatever it was, and creates none.
        (ACTIVE, COMPLAINED, COMPLAINT, COMPLAINED),
        (PENDING, COMPLAINED, COMPLAINT, COMPLAINED),
        (UNSUBSCRIBED, COMPLAINED, COMPLAINT, COMPLAINED),
        (BOUNCED, COMPLAINED, COMPLAINT, COMPLAINED),
        (COMPLAINED, COMPLAINED, COMPLAINT, COMPLAINED),
        (None, COMPLAINED, COMPLAINT, None),
        # ... and nothing of the publisher's, nor a bounce or an unsubscribe, overrules it.
        (COMPLAINED, ACTIVE, LOAD, COMPLAINED),
        (COMPLAINED, UNSUBSCRIBED, LOAD, COMPLAINED),
        (COMPLAINED, BOUNCED, LOAD, COMPLAINED),
        (COMPLAINED, BOUNCED, BOUNCE, COMPLAINED),
        (COMPLAINED, UNSUBSCRIBED, UNSUBSCRIBE, COMPLAINED),
        (ACTIVE, COMPLAINED, LOAD, COMPLAINED),  # an import of a suppression list
        (COMPLAINED, ACTIVE, READER, ACTIVE),  # only the reader's own confirmed choice
    ],
)
def test_next_status(
    current: SubscriptionStatus | None,
    wanted: SubscriptionStatus,
    by: StatusChange,
    after: SubscriptionStatus | None,
) -> None:
    assert next_status(current, wanted, by=by) == after


@pytest.mark.parametrize(
    ("action", "soft_bounces", "got_through", "effect", "count"),
    [
        (BounceAction.SUPPRESS, 0, False, BounceEffect.SUPPRESSED, 0),  # hard: at once
        (BounceAction.SUPPRESS, 2, False, BounceEffect.SUPPRESSED, 2),  # the count stays
        (BounceAction.NOTE, 0, False, BounceEffect.NOTED, 0),  # policy: nobody's fault
        (BounceAction.NOTE, 2, True, BounceEffect.NOTED, 2),
        (BounceAction.COUNT, 0, False, BounceEffect.COUNTED, 1),  # the first soft bounce
        (BounceAction.COUNT, 1, False, BounceEffect.COUNTED, 2),
        (BounceAction.COUNT, 2, False, BounceEffect.SUPPRESSED, 3),  # the limit-th in a row
        (BounceAction.COUNT, 2, True, BounceEffect.COUNTED, 1),  # one got through: again from 1
        (BounceAction.COUNT, 5, False, BounceEffect.SUPPRESSED, 6),
    ],
)
def test_bounce_outcome_with_a_limit_of_3(
    action: BounceAction, soft_bounces: int, got_through: bool, effect: BounceEffect, count: int
) -> None:
    outcome = bounce_outcome(
        action, soft_bounces=soft_bounces, got_through=got_through, soft_limit=3
    )
    assert outcome == (effect, count)


def test_a_limit_of_1_suppresses_on_the_first_soft_bounce() -> None:
    outcome = bounce_outcome(BounceAction.COUNT, soft_bounces=0, got_through=False, soft_limit=1)
    assert outcome == (BounceEffect.SUPPRESSED, 1)
