"""Edition verdicts: how an edition that waited for approval was decided, once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import RowMapping

from digest.models import Edition, EditionVerdict, Verdict
from digest.store.base import StoreBase
from digest.store.rows import _edition
from digest.store.schema import deliveries, edition_verdicts, editions, lists


def _verdict(row: RowMapping) -> EditionVerdict:
    return EditionVerdict(
        edition_id=row["edition_id"],
        verdict=Verdict(row["verdict"]),
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
    )


class VerdictStore(StoreBase):
    """Edition verdicts: how an edition that waited for approval was decided, once."""

    def record_verdict(
        self, edition_id: int, verdict: Verdict, *, decided_by: str, now: datetime
    ) -> bool:
        """Decide an edition; returns whether this verdict stood (the first one does: an
        approval and the deadline may race)."""
        with self._tx() as tx:
            done = tx.execute(
                self._insert_ignore(edition_verdicts).values(
                    edition_id=edition_id,
                    verdict=verdict,
                    decided_by=decided_by[:320],
                    decided_at=now,
                )
            )
            return int(done.rowcount) == 1

    def verdict_for(self, edition_id: int) -> EditionVerdict | None:
        """The edition's verdict, if it was decided."""
        with self._tx(read_only=True) as tx:
            row = (
                tx.execute(
                    select(edition_verdicts).where(edition_verdicts.c.edition_id == edition_id)
                )
                .mappings()
                .first()
            )
        return None if row is None else _verdict(row)

    def undecided_editions(self, list_slug: str, *, since: datetime) -> list[Edition]:
        """The list's editions made since `since` with no verdict and no delivery queued:
        those still waiting for an editor, oldest first."""
        with self._tx(read_only=True) as tx:
            list_id = self._list_id(tx, list_slug)
            rows = tx.execute(
                select(editions)
                .where(
                    editions.c.list_id == list_id,
                    editions.c.created_at >= since,
                    ~select(edition_verdicts.c.edition_id)
                    .where(edition_verdicts.c.edition_id == editions.c.id)
                    .exists(),
                    ~select(deliveries.c.edition_id)
                    .where(deliveries.c.edition_id == editions.c.id)
                    .exists(),
                )
                .order_by(editions.c.created_at, editions.c.id)
            ).mappings()
            return [_edition(row, list_slug) for row in rows]

    def skipped_editions(self, *, limit: int) -> list[tuple[str, Edition, EditionVerdict]]:
        """The newest editions skipped at their approval deadline: (list, edition, verdict)."""
        with self._tx(read_only=True) as tx:
            rows = tx.execute(
                select(editions, lists.c.slug, edition_verdicts)
                .join(lists, lists.c.id == editions.c.list_id)
                .join(edition_verdicts, edition_verdicts.c.edition_id == editions.c.id)
                .where(edition_verdicts.c.verdict == Verdict.SKIPPED)
                .order_by(edition_verdicts.c.decided_at.desc())
                .limit(limit)
            ).mappings()
            return [(row["slug"], _edition(row, row["slug"]), _verdict(row)) for row in rows]
