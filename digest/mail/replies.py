"""What an SMTP reply means for a delivery: classified by reply code and RFC 3463 status code.

Enhanced status codes win over the basic code when present; exception types never decide.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from digest.mail.transport import Reply, Stage
from digest.models import DeliveryState

_RNG = random.Random()
# RFC 2034: the status code opens the reply text (each line of a multi-line reply).
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


class Verdict(StrEnum):
    """The meaning of a reply for the recipient and for the sender."""

    DELIVERED = "delivered"
    RETRY = "retry"  # temporary: try again later
    UNCERTAIN = "uncertain"  # no reply after the final dot: the server may have it
    BOUNCE = "bounce"  # the mailbox does not exist: stop mailing it
    REJECTED = "rejected"  # permanent for this message, the address itself may be fine
    POLICY = "policy"  # the receiver blames the sender (auth, reputation): alert, do not bounce


def enhanced_code(text: str, code: int = 0) -> tuple[int, int, int] | None:
    """The RFC 3463 class.subject.detail that opens a reply text, if any; one whose class
    disagrees with the reply `code` is no status code (an IP address in a 450's text, say)."""
    found = _ENHANCED.match(text)
    if found is None or (code and int(found[1]) != code // 100):
        return None
    return int(found[1]), int(found[2]), int(found[3])


def judge(reply: Reply) -> Verdict:
    """Classify one reply."""
    if reply.stage == Stage.PREPARE:
        return Verdict.REJECTED  # bad data for this subscriber: retrying would not help
    if reply.code == 0:
        return Verdict.UNCERTAIN if reply.stage == Stage.DOT else Verdict.RETRY
    if reply.accepted:
        return Verdict.DELIVERED
    enhanced = enhanced_code(reply.text, reply.code)
    klass = enhanced[0] if enhanced else reply.code // 100
    if klass == 4:
        return Verdict.RETRY
    if klass != 5:
        return Verdict.RETRY
    # "552 too much mail data / too many recipients" at RCPT is temporary (RFC 5321 4.5.3.1.10).
    if reply.code == 552 and reply.stage == Stage.RCPT and (enhanced is None or enhanced[1] != 1):
        return Verdict.RETRY
    if enhanced and enhanced[1] == 7:
        return Verdict.POLICY
    if enhanced and enhanced[1] == 1 and enhanced[2] in (1, 2, 3, 6):
        return Verdict.BOUNCE
    return Verdict.REJECTED


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try again: exponential backoff with jitter, up to a lifetime (after Postfix)."""

    first: timedelta = timedelta(seconds=300)
    maximum: timedelta = timedelta(seconds=4000)
    lifetime: timedelta = timedelta(hours=24)
    jitter: float = 0.1

    def delay(self, attempts: int, *, rng: random.Random | None = None) -> timedelta:
        """The wait after the given number of failed attempts (1 = the first failure)."""
        base = min(self.first * (1 << max(attempts - 1, 0)), self.maximum)
        spread = (rng or _RNG).uniform(-self.jitter, self.jitter)
        return base * (1 + spread)


def next_state(
    verdict: Verdict, *, attempts: int, queued_at: datetime, now: datetime, policy: RetryPolicy
) -> tuple[DeliveryState, datetime | None]:
    """The ledger state (and retry time) that a verdict leads to."""
    if verdict == Verdict.DELIVERED:
        return DeliveryState.SENT, None
    if verdict in (Verdict.RETRY, Verdict.UNCERTAIN):
        retry_at = now + policy.delay(attempts)
        if retry_at - queued_at > policy.lifetime:
            return DeliveryState.FAILED, None
        return (
            DeliveryState.UNKNOWN if verdict == Verdict.UNCERTAIN else DeliveryState.DEFERRED
        ), retry_at
    return DeliveryState.FAILED, None
