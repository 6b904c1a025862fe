"""All SQL lives here, one module per aggregate; `Store` is their one face.

`Store(engine)` has every aggregate's methods, so callers hold one object; each module
(articles, subscribers, subscriptions, enrolment, editions, ledger, bounces, schedule, editors,
verdicts, shapes, history, queueing, clicks) owns its tables' queries and nothing else.
"""

from __future__ import annotations

from digest.rules import SUPPRESSED, BounceAction, BounceEffect
from digest.store.articles import ArticleStore
from digest.store.base import StoreBase
from digest.store.bounces import AppliedBounce, BounceEvent, BounceStore
from digest.store.clicks import ClickCount, ClickRow, ClickStore
from digest.store.complaints import (
    AppliedComplaint,
    Attribution,
    ComplaintEffect,
    ComplaintEvent,
    ComplaintStore,
    NamedBy,
)
from digest.store.editions import EditionStore, EditionSummary
from digest.store.editors import Editor, EditorStore
from digest.store.enrolment import Enrolled, Enrolment, EnrolmentStore
from digest.store.history import (
    BounceLine,
    DeliveryLine,
    EditionTotals,
    HistoryStore,
    Refusal,
)
from digest.store.ledger import Claim, LedgerStore, Outcome
from digest.store.queueing import QueueStore
from digest.store.schedule import Leadership, ScheduleStore
from digest.store.shapes import ShapeStore
from digest.store.subscribers import SubscriberStore, SubscriptionRow
from digest.store.subscriptions import SubscriptionStore
from digest.store.verdicts import VerdictStore

__all__ = [
    "SUPPRESSED",
    "AppliedBounce",
    "AppliedComplaint",
    "Attribution",
    "BounceAction",
    "BounceEffect",
    "BounceEvent",
    "BounceLine",
    "Claim",
    "ClickCount",
    "ClickRow",
    "ComplaintEffect",
    "ComplaintEvent",
    "DeliveryLine",
    "EditionSummary",
    "EditionTotals",
    "Editor",
    "Enrolled",
    "Enrolment",
    "Leadership",
    "NamedBy",
    "Outcome",
    "Refusal",
    "Store",
    "SubscriptionRow",
]


class Store(
    ArticleStore,
    SubscriberStore,
    SubscriptionStore,
    EnrolmentStore,
    EditionStore,
    LedgerStore,
    QueueStore,
    BounceStore,
    ComplaintStore,
    ScheduleStore,
    EditorStore,
    VerdictStore,
    ShapeStore,
    HistoryStore,
    ClickStore,
    StoreBase,
):
    """The database, every aggregate's queries on one engine."""
