"""The schedule's records: each slot's outcome, due editions, and who leads."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from digest.models import (
    Edition,
    EditionStatus,
    ListRun,
    RunOutcome,
)
from digest.store.base import StoreBase
from digest.store.ledger import _due
from digest.store.rows import _edition
from digest.store.schema import (
    deliveries,
    editions,
    lists,
    schedule_runs,
)

log = logging.getLogger(__name__)

# The advisory lock that `digest run` processes on one PostgreSQL database contend for.
_LEADER_LOCK = 0x6469676573740001


class Leadership:
    """Whether this process leads the schedule (makes editions) on a shared database.

    PostgreSQL: a session advisory lock held on a connection of its own. The lock lives
    with that connection, so when a leader dies its lock goes and a standby takes over on its
    next try. SQLite is one machine's file: every process leads, and the editions' unique key
    keeps them to one edition per list and date.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    def leads(self) -> bool:
        """True if this process leads now; tries to take the lead if nobody holds it."""
        if self.engine.dialect.name != "postgresql":
            return True
        with self._lock:
            if self._connection is not None:
                try:
                    self._connection.execute(select(1))
                    return True
                except SQLAlchemyError:
                    log.warning("lost the connection that held the schedule's lead")
                    self._drop()
            try:
                connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            except SQLAlchemyError:
                return False
            won = connection.execute(select(func.pg_try_advisory_lock(_LEADER_LOCK))).scalar()
            if not won:
                connection.close()
                return False
            self._connection = connection
            log.info("leading the schedule")
            return True

    def release(self) -> None:
        """Give up the lead (a clean stop), so a standby takes over at once."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except SQLAlchemyError:
                connection.invalidate()


class ScheduleStore(StoreBase):
    """The schedule's records: each slot's outcome, due editions, and who leads."""

    def record_run(
        self,
        list_slug: str,
        *,
        slot: datetime,
        outcome: RunOutcome,
        edition_id: int | None,
        detail: str,
        owner: str,
        now: datetime,
    ) -> bool:
        """Remember how a scheduled slot of the list went; returns whether this record stood.

        The first record of a slot stands: two schedulers may both handle it.
        """
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            done = tx.execute(
                self._insert_ignore(schedule_runs).values(
                    list_id=list_id,
                    slot=slot,
                    outcome=outcome,
                    edition_id=edition_id,
                    detail=detail[:1000],
                    owner=owner,
                    recorded_at=now,
                )
            )
            return int(done.rowcount) == 1

    def last_run(self, list_slug: str, *, by_hand: bool = False) -> ListRun | None:
        """The list's latest recorded slot of its schedule, whatever its outcome.

        Sends by hand count only with `by_hand` (what `digest status` shows): the scheduler
        reads the last slot to find the next ones, and a send by hand at 06:30 must not hide
        a 07:00 slot missed the day before.
        """
        runs = self.recent_runs(list_slug=list_slug, limit=1, by_hand=by_hand)
        return runs[0] if runs else None

    def recent_runs(
        self,
        *,
        list_slug: str | None = None,
        outcome: RunOutcome | None = None,
        limit: int = 10,
        by_hand: bool = True,
    ) -> list[ListRun]:
        """Recorded slots, newest first, of one list or all, of one outcome or any; sends by
        hand among them unless `by_hand` is false."""
        query = (
            select(schedule_runs, lists.c.slug)
            .join(lists, lists.c.id == schedule_runs.c.list_id)
            .order_by(schedule_runs.c.slot.desc(), lists.c.slug)
            .limit(limit)
        )
        if list_slug is not None:
            query = query.where(lists.c.slug == list_slug)
        if outcome is not None:
            query = query.where(schedule_runs.c.outcome == outcome)
        if not by_hand:
            query = query.where(schedule_runs.c.outcome != RunOutcome.BY_HAND)
        with self._tx(read_only=True) as tx:
            if list_slug is not None:
                self._list_id(tx, list_slug)  # an unknown list is an error, not "never ran"
            return [
                ListRun(
                    list_slug=row["slug"],
                    slot=row["slot"],
                    outcome=RunOutcome(row["outcome"]),
                    recorded_at=row["recorded_at"],
                    edition_id=row["edition_id"],
                    detail=row["detail"],
                )
                for row in tx.execute(query).mappings()
            ]

    def editions_due(self, *, now: datetime, since: datetime) -> list[Edition]:
        """Editions made since `since`, not paused, with deliveries due now, oldest first.

        What `digest run` sweeps up: held rows whose time came, retries, dead senders' claims.
        """
        with self._tx(read_only=True) as tx:
            rows = tx.execute(
                select(editions, lists.c.slug)
                .join(lists, lists.c.id == editions.c.list_id)
                .where(
                    editions.c.created_at >= since,
                    editions.c.status != EditionStatus.PAUSED,
                    select(deliveries.c.edition_id).where(_due(editions.c.id, now)).exists(),
                )
                .order_by(editions.c.created_at, editions.c.id)
            ).mappings()
            return [_edition(row, row["slug"]) for row in rows]
