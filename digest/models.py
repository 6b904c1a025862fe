"""Plain frozen values that flow between the stages; no behaviour beyond small derived facts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum


class DeliveryState(StrEnum):
    """Where one (edition, subscriber) delivery stands in the ledger."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"  # the subscriber left the list before the message went out


class SubscriptionStatus(StrEnum):
    """A subscriber's standing on one list."""

    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"  # the reader reported our mail as spam (an ARF complaint)


class UnsubscribeChannel(StrEnum):
    """How a reader left a list: what the health numbers split unsubscribes by."""

    ONE_CLICK = "one-click"  # RFC 8058: the mail client's button posted, journaled or not
    PAGE = "page"  # the unsubscribe link's page, or unticking the list on the preferences page
    MAIL = "mail"  # a mail to the List-Unsubscribe mailto: address
    PUBLISHER = "publisher"  # `digest subscribers remove`, an import, the desk
    UNKNOWN = "unknown"  # left before the channel was recorded (revision 0010)


class EditionStatus(StrEnum):
    """An edition's life: built, being delivered, finished."""

    READY = "ready"
    SENDING = "sending"
    DONE = "done"
    PAUSED = "paused"


class Oversize(StrEnum):
    """What `send` does with a message over [delivery] max_message_kb."""

    WARN = "warn"
    REFUSE = "refuse"


class SMTPSecurity(StrEnum):
    """How the SMTP connection is protected."""

    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


@dataclass(frozen=True, slots=True)
class BodyBlock:
    """One block of an article body: a paragraph or a cross-heading."""

    kind: str  # "p" or "h2"
    text: str


@dataclass(frozen=True, slots=True)
class Article:
    """An article as the site published it, already cleaned of markup and control characters."""

    id: str
    title: str
    summary: str
    section: str
    url: str
    published_at: datetime
    image_url: str | None = None
    image_alt: str = ""
    author: str | None = None
    lead: bool = False
    body: tuple[BodyBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A person who receives digests; `name` may be empty."""

    id: int
    email: str
    name: str = ""
    locale: str = ""
    timezone: str = ""


@dataclass(frozen=True, slots=True)
class Edition:
    """One issue of one list: rendered once, delivered to every subscriber."""

    id: int
    list_slug: str
    edition_date: date
    created_at: datetime
    cutoff: datetime
    subject: str
    html: str
    text: str
    article_ids: tuple[str, ...]
    slot_nonce: str
    status: EditionStatus = EditionStatus.READY
    # Each story's article ids in reading order, representative first; () for an edition made
    # before stories were recorded, where every article is a story of its own.
    stories: tuple[tuple[str, ...], ...] = ()


class Tracking(StrEnum):
    """How a list's links count clicks: per edition and article, also per reader, or not at all."""

    AGGREGATE = "aggregate"
    PER_SUBSCRIBER = "per_subscriber"
    OFF = "off"


class Approval(StrEnum):
    """Whether a list's scheduled edition goes out by itself or waits for an editor."""

    AUTO = "auto"
    REQUIRED = "required"


class OnDeadline(StrEnum):
    """What becomes of an edition still unapproved at the list's approval deadline."""

    SEND = "send"
    SKIP = "skip"


class Verdict(StrEnum):
    """How an edition that waited for approval was decided; one verdict per edition."""

    APPROVED = "approved"  # an editor approved it
    DEADLINE_SENT = "sent-at-deadline"  # nobody approved by the deadline; on_deadline = "send"
    SKIPPED = "skipped"  # nobody approved by the deadline; on_deadline = "skip": a missed edition


@dataclass(frozen=True, slots=True)
class EditionVerdict:
    """The one decision about an edition that waited for approval."""

    edition_id: int
    verdict: Verdict
    decided_by: str  # the editor's address, or "deadline"
    decided_at: datetime


class RunOutcome(StrEnum):
    """How one scheduled slot of a list ended."""

    RAN = "ran"  # the edition was made (or found) and its delivery started
    EMPTY = "nothing-new"  # nothing new to send and send_when_empty is off
    MISSED = "missed"  # the scheduler was down past the slot's grace period: nothing sent
    FAILED = "failed"  # the run raised; `detail` says why, the sweep retries what was queued
    # `digest send` by hand, its slot the moment it ran. Shown as the last run, never read by
    # the schedule's missed-run logic: a send by hand is not a slot of the schedule.
    BY_HAND = "by-hand"


@dataclass(frozen=True, slots=True)
class ListRun:
    """One slot of a list's schedule as the scheduler recorded it, or one send by hand."""

    list_slug: str
    slot: datetime
    outcome: RunOutcome
    recorded_at: datetime
    edition_id: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class EditionShape:
    """An editor's changes to one list's edition of one date, applied while it is a draft.

    `lead`: an article id of the story to lead with; `excluded`: article ids left out of this
    edition only (not sent, so a later edition may still carry them); `section_order`: section
    names to put first, in this order; `subject`: the subject line instead of the template's.
    """

    lead: str | None = None
    excluded: frozenset[str] = frozenset()
    section_order: tuple[str, ...] = ()
    subject: str | None = None

    def __bool__(self) -> bool:
        return bool(self.lead or self.excluded or self.section_order or self.subject)
