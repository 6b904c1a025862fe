"""Clicks and opens of counted links, and the per-edition facts the health numbers read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    and_,
    func,
    insert,
    select,
    update,
)

from digest.store.base import StoreBase
from digest.store.schema import (
    UTCDateTime,
    bounce_events,
    complaints,
    deliveries,
    metadata,
    unsubscribes,
)

# One row per followed link (kind "click") or fetched pixel ("open"); `machine` with its
# `reason` (head, scanner, early, burst) marks traffic counted apart from the totals.
# `subscriber_id` is set only for lists with tracking = "per_subscriber".
clicks = Table(
    "clicks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("edition_id", ForeignKey("editions.id"), nullable=False),
    Column("article_id", String(255), nullable=False),
    Column("subscriber_id", ForeignKey("subscribers.id")),
    Column("kind", String(10), nullable=False),
    Column("machine", Boolean, nullable=False),
    Column("reason", String(20), nullable=False),
    Column("clicked_at", UTCDateTime, nullable=False),
    Index("ix_clicks_edition_article", "edition_id", "article_id"),
)


@dataclass(frozen=True, slots=True)
class ClickRow:
    """One click or open to record; `burst_since` re-marks the reader's earlier clicks of the
    edition from that moment as machine (a scanner that followed every link)."""

    edition_id: int
    article_id: str
    subscriber_id: int | None
    kind: str
    machine: bool
    reason: str
    clicked_at: datetime
    burst_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class ClickCount:
    """One article's (or, with kind "open", the pixel's) human and machine counts."""

    kind: str
    article_id: str
    human: int
    machine: int


class ClickStore(StoreBase):
    """Clicks: written in batches, counted per edition and article."""

    def record_clicks(self, rows: Sequence[ClickRow]) -> None:
        """Write a batch of clicks in one transaction (one row per click)."""
        if not rows:
            return
        with self._tx() as tx:
            tx.execute(
                insert(clicks),
                [
                    {
                        "edition_id": r.edition_id,
                        "article_id": r.article_id[:255],
                        "subscriber_id": r.subscriber_id,
                        "kind": r.kind,
                        "machine": r.machine,
                        "reason": r.reason,
                        "clicked_at": r.clicked_at,
                    }
                    for r in rows
                ],
            )
            for r in rows:
                if r.burst_since is not None and r.subscriber_id is not None:
                    tx.execute(
                        update(clicks)
                        .where(
                            clicks.c.edition_id == r.edition_id,
                            clicks.c.subscriber_id == r.subscriber_id,
                            clicks.c.clicked_at >= r.burst_since,
                            clicks.c.machine.is_(False),
                        )
                        .values(machine=True, reason="burst")
                    )

    def click_counts(self, edition_id: int) -> list[ClickCount]:
        """The edition's clicks and opens, human and machine, by article."""
        machine = func.sum(func.cast(clicks.c.machine, Integer))
        with self._tx(read_only=True) as tx:
            rows = tx.execute(
                select(clicks.c.kind, clicks.c.article_id, func.count(), machine)
                .where(clicks.c.edition_id == edition_id)
                .group_by(clicks.c.kind, clicks.c.article_id)
            ).all()
        return [
            ClickCount(kind, article_id, int(total) - int(bots or 0), int(bots or 0))
            for kind, article_id, total, bots in rows
        ]

    def delivered_at(self, edition_id: int, subscriber_id: int | None) -> datetime | None:
        """When the reader's copy went out; with no reader, when the edition's first did."""
        where = [deliveries.c.edition_id == edition_id, deliveries.c.sent_at.is_not(None)]
        if subscriber_id is not None:
            where.append(deliveries.c.subscriber_id == subscriber_id)
        with self._tx(read_only=True) as tx:
            found = tx.execute(select(func.min(deliveries.c.sent_at)).where(and_(*where)))
            value = found.scalar()
        return value if isinstance(value, datetime) else None

    def delivery_times(self, copies: Sequence[tuple[int, int]]) -> dict[tuple[int, int], datetime]:
        """When each (edition id, subscriber id) copy went out, for those that did: one query
        per edition however many readers are asked about."""
        readers: dict[int, set[int]] = {}
        for edition_id, subscriber_id in copies:
            readers.setdefault(edition_id, set()).add(subscriber_id)
        found: dict[tuple[int, int], datetime] = {}
        with self._tx(read_only=True) as tx:
            for edition_id, ids in readers.items():
                for subscriber_id, sent_at in tx.execute(
                    select(deliveries.c.subscriber_id, deliveries.c.sent_at).where(
                        deliveries.c.edition_id == edition_id,
                        deliveries.c.subscriber_id.in_(sorted(ids)),
                        deliveries.c.sent_at.is_not(None),
                    )
                ):
                    found[(edition_id, int(subscriber_id))] = sent_at
        return found

    def bounce_counts(self, edition_id: int) -> dict[str, int]:
        """The edition's applied bounce reports by kind (hard, soft, policy)."""
        return self._counted_by(bounce_events.c.kind, edition_id)

    def complaint_count(self, edition_id: int) -> int:
        """ARF complaints that named a copy of the edition."""
        with self._tx(read_only=True) as tx:
            found = tx.execute(
                select(func.count()).where(complaints.c.edition_id == edition_id)
            ).scalar()
        return int(found or 0)

    def unsubscribe_counts(self, edition_id: int) -> dict[str, int]:
        """The unsubscribes credited to the edition, by channel."""
        return self._counted_by(unsubscribes.c.channel, edition_id)

    def _counted_by(self, column: Any, edition_id: int) -> dict[str, int]:
        """The rows of `column`'s table credited to the edition, counted by `column`."""
        with self._tx(read_only=True) as tx:
            rows = tx.execute(
                select(column, func.count())
                .where(column.table.c.edition_id == edition_id)
                .group_by(column)
            ).all()
        return {str(value): int(n) for value, n in rows}
