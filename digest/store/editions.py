"""Editions: one per list and local date, with their articles, body and status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from digest.errors import InvalidInputError, NotFoundError, StoreError
from digest.models import (
    DeliveryState,
    Edition,
    EditionStatus,
)
from digest.store.base import _RECENT_ERRORS, _STARTED, StoreBase
from digest.store.rows import _edition
from digest.store.schema import (
    deliveries,
    edition_notes,
    editions,
    lists,
    subscribers,
)


@dataclass(frozen=True, slots=True)
class EditionSummary:
    """An edition with its delivery counts per state, for `digest status`."""

    edition: Edition
    counts: dict[str, int]
    recent_errors: tuple[str, ...] = ()


class EditionStore(StoreBase):
    """Editions: one per list and local date, with their articles, body and status."""

    def latest_edition(self, list_slug: str, *, before: date | None = None) -> Edition | None:
        """The list's most recent edition (strictly before `before`, if given)."""
        with self._tx(read_only=True) as tx:
            list_id = self._list_id(tx, list_slug)
            query = select(editions).where(editions.c.list_id == list_id)
            if before is not None:
                query = query.where(editions.c.edition_date < before)
            row = (
                tx.execute(query.order_by(editions.c.edition_date.desc()).limit(1))
                .mappings()
                .first()
            )
        return None if row is None else _edition(row, list_slug)

    def edition_for(self, list_slug: str, edition_date: date) -> Edition | None:
        """The list's edition of that date, if it was made."""
        with self._tx(read_only=True) as tx:
            list_id = self._list_id(tx, list_slug)
            row = (
                tx.execute(
                    select(editions).where(
                        editions.c.list_id == list_id, editions.c.edition_date == edition_date
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else _edition(row, list_slug)

    def sent_article_ids(self, list_slug: str, *, since: datetime) -> set[str]:
        """Ids of articles that went out in the list's editions made since `since`."""
        with self._tx(read_only=True) as tx:
            list_id = self._list_id(tx, list_slug)
            rows = tx.execute(
                select(editions.c.article_ids).where(
                    editions.c.list_id == list_id, editions.c.created_at >= since
                )
            ).scalars()
            return {article_id for ids in rows for article_id in ids}

    def create_edition(
        self,
        *,
        list_slug: str,
        edition_date: date,
        now: datetime,
        cutoff: datetime,
        subject: str,
        html: str,
        text: str,
        article_ids: Sequence[str],
        slot_nonce: str,
        stories: Sequence[Sequence[str]] = (),
    ) -> tuple[Edition, bool]:
        """Store a new edition; if the list already has one for that date, return that instead.

        The unique (list, date) key makes this safe when two processes race: one wins, both
        get the same edition. Returns (edition, created).
        """
        try:
            with self._tx() as tx:
                list_id = self._list_id(tx, list_slug)
                tx.execute(
                    insert(editions).values(
                        list_id=list_id,
                        edition_date=edition_date,
                        created_at=now,
                        cutoff=cutoff,
                        subject=subject,
                        html=html,
                        text=text,
                        article_ids=list(article_ids),
                        stories=[list(ids) for ids in stories],
                        slot_nonce=slot_nonce,
                        status=EditionStatus.READY,
                    )
                )
            created = True
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            created = False
        edition = self.edition_for(list_slug, edition_date)
        assert edition is not None
        return edition, created

    def edition_by_id(self, edition_id: int) -> Edition:
        """The edition with this number."""
        with self._tx(read_only=True) as tx:
            row = (
                tx.execute(
                    select(editions, lists.c.slug)
                    .join(lists, lists.c.id == editions.c.list_id)
                    .where(editions.c.id == edition_id)
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"no edition #{edition_id}")
        return _edition(row, row["slug"])

    def edition_status(self, edition_id: int) -> EditionStatus:
        """The edition's stored status alone: read once per claimed batch while sending."""
        with self._tx(read_only=True) as tx:
            found = tx.execute(select(editions.c.status).where(editions.c.id == edition_id))
            status = found.scalar_one_or_none()
        if status is None:
            raise NotFoundError(f"no edition #{edition_id}")
        return EditionStatus(status)

    def set_edition_status(self, edition_id: int, status: EditionStatus) -> None:
        """Move an edition to `status`."""
        with self._tx() as tx:
            tx.execute(update(editions).where(editions.c.id == edition_id).values(status=status))

    def editions_with_counts(self, *, limit: int = 20) -> list[EditionSummary]:
        """The newest editions with their delivery counts per state."""
        with self._tx(read_only=True) as tx:
            rows = newest_editions(tx, limit)
            counts: dict[int, dict[str, int]] = {row["id"]: {} for row in rows}
            for edition_id, state, n in tx.execute(
                select(deliveries.c.edition_id, deliveries.c.state, func.count())
                .where(deliveries.c.edition_id.in_(counts))
                .group_by(deliveries.c.edition_id, deliveries.c.state)
            ):
                counts[edition_id][state] = n
            trouble = (DeliveryState.FAILED, DeliveryState.DEFERRED, DeliveryState.UNKNOWN)
            errors = {
                edition_id: tuple(
                    f"{email}: {state}: {reply}"
                    for email, state, reply in tx.execute(
                        select(subscribers.c.email, deliveries.c.state, deliveries.c.last_reply)
                        .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
                        .where(
                            deliveries.c.edition_id == edition_id, deliveries.c.state.in_(trouble)
                        )
                        .order_by(deliveries.c.updated_at.desc())
                        .limit(_RECENT_ERRORS)
                    )
                )
                for edition_id in counts
            }
        return [
            EditionSummary(
                edition=_edition(row, row["slug"]),
                counts=counts[row["id"]],
                recent_errors=errors[row["id"]],
            )
            for row in rows
        ]

    def archived_editions(self, list_slug: str) -> list[tuple[date, str]]:
        """(date, subject) of every edition of the list whose delivery began, newest first."""
        with self._tx(read_only=True) as tx:
            list_id = self._list_id(tx, list_slug)
            rows = tx.execute(
                select(editions.c.edition_date, editions.c.subject)
                .where(editions.c.list_id == list_id, editions.c.status.in_(_STARTED))
                .order_by(editions.c.edition_date.desc())
            ).all()
        return [(day, subject) for day, subject in rows]

    def archived_edition(self, list_slug: str, edition_date: date) -> Edition | None:
        """The list's edition of that date if its delivery began, else None."""
        edition = self.edition_for(list_slug, edition_date)
        return edition if edition is not None and edition.status in _STARTED else None

    def set_note(
        self, list_slug: str, edition_date: date, markdown: str | None, *, now: datetime
    ) -> None:
        """Keep (or with None remove) the editor's note of the list's edition of that date.

        Refused once that edition is made: its copies are rendered, and some may be sent.
        """
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            refuse_made(tx, list_id, list_slug, edition_date, "its note")
            key = (edition_notes.c.list_id == list_id) & (
                edition_notes.c.edition_date == edition_date
            )
            tx.execute(delete(edition_notes).where(key))
            if markdown is not None:
                tx.execute(
                    insert(edition_notes).values(
                        list_id=list_id,
                        edition_date=edition_date,
                        markdown=markdown,
                        updated_at=now,
                    )
                )

    def edition_note(self, list_slug: str, edition_date: date) -> str | None:
        """The Markdown of the editor's note for the list's edition of that date, if set."""
        with self._tx(read_only=True) as tx:
            list_id = self._list_id(tx, list_slug)
            found: str | None = tx.execute(
                select(edition_notes.c.markdown).where(
                    edition_notes.c.list_id == list_id,
                    edition_notes.c.edition_date == edition_date,
                )
            ).scalar()
        return found


def newest_editions(tx: Connection, limit: int) -> list[RowMapping]:
    """The newest editions' rows, each with its list's slug."""
    return list(
        tx.execute(
            select(editions, lists.c.slug)
            .join(lists, lists.c.id == editions.c.list_id)
            .order_by(editions.c.created_at.desc(), editions.c.id.desc())
            .limit(limit)
        ).mappings()
    )


def refuse_made(
    tx: Connection, list_id: int, list_slug: str, edition_date: date, what: str
) -> None:
    """Raise InvalidInputError once the edition is made: what shapes it applies to the draft."""
    made = tx.execute(
        select(editions.c.id).where(
            editions.c.list_id == list_id, editions.c.edition_date == edition_date
        )
    ).first()
    if made is not None:
        raise InvalidInputError(
            f"edition #{made[0]} of {list_slug} for {edition_date} is already made; "
            f"{what} can no longer change"
        )
